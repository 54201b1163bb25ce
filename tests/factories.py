"""Test data made on the fly: keys and CSRs (nothing here comes from elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from iotpki.wire.keys import generate_private_key, signature_hash_for


def make_csr(
    common_name: str | None = "sensor-1",
    sans: Sequence[x509.GeneralName] = (),
    key: Any = None,
    key_type: str = "ec-p256",
    extra_subject: Sequence[x509.NameAttribute] = (),
) -> tuple[bytes, Any]:
    """(DER CSR, private key)."""
    key = key if key is not None else generate_private_key(key_type)
    attributes = list(extra_subject)
    if common_name is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
    hash_algorithm = signature_hash_for(key)
    if hash_algorithm is None and not _is_eddsa_or_mldsa(key):
        hash_algorithm = hashes.SHA256()
    csr = builder.sign(key, hash_algorithm)
    return csr.public_bytes(serialization.Encoding.DER), key


def _is_eddsa_or_mldsa(key: Any) -> bool:
    return type(key).__name__.startswith(("Ed25519", "Ed448", "MLDSA"))


def domain_uri(domain: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(f"urn:iotpki:domain:{domain}")


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
