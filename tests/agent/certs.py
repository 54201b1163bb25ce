"""Self-made certificates with chosen validity for the agent's unit tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def certificate(not_before: datetime = START, days: float = 90, serial: int = 1,
                key: Any = None, issuer_name: str = "Test CA") -> tuple[x509.Certificate, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(serial).not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=days)).sign(key, hashes.SHA256()))
    return cert, key
