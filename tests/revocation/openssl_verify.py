"""`openssl verify` of one leaf against the operational CA's chain and the CRLs given: the
peer that checks our CRLs and CRL shards (RFC 5280 §6.3)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.app import PKI
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.status import PublishedCRL
from tests.revocation.conftest import CA


def pem_crl(crl: PublishedCRL) -> bytes:
    return x509.load_der_x509_crl(crl.der).public_bytes(Encoding.PEM)


class Verifier:
    """Runs `openssl verify` on one leaf with our chain and the CRLs given."""

    def __init__(self, pki: PKI, tmp: Path) -> None:
        self.tmp = tmp
        chain = pki.authorities.get(CA).full_chain
        (tmp / "root.pem").write_bytes(chain[-1].public_bytes(Encoding.PEM))
        (tmp / "sub.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))

    def run(self, leaf: Issued, crls: list[PublishedCRL], *flags: str) -> tuple[int, str]:
        (self.tmp / "leaf.pem").write_bytes(leaf.certificate.public_bytes(Encoding.PEM))
        (self.tmp / "crls.pem").write_bytes(b"".join(pem_crl(c) for c in crls))
        done = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "sub.pem",
             "-CRLfile", "crls.pem", *flags, "leaf.pem"],
            cwd=self.tmp, capture_output=True, text=True, timeout=30, check=False)
        return done.returncode, done.stdout + done.stderr
