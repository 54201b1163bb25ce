"""Proof that a requester holds the key of its previous-stage (or current) certificate.

Protocols prove it on the wire (the TLS handshake of EST, the signature protecting a CMP
message). Elsewhere, the requester signs the DER of its new CSR with the old key; the
signature travels beside the CSR (detached). Algorithms follow the key, as in X.509
(ECDSA with SHA-256/384, Ed25519, RSA PKCS#1 v1.5 with SHA-256, ML-DSA).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from iotpki.wire.errors import PKIError
from iotpki.wire.keys import signature_hash_for


class PossessionError(PKIError):
    """A possession signature that does not verify with the certificate's key."""


def sign_possession(private_key: Any, csr_der: bytes) -> bytes:
    algorithm = signature_hash_for(private_key)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(csr_der, ec.ECDSA(algorithm or hashes.SHA256()))
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(csr_der, padding.PKCS1v15(), algorithm or hashes.SHA256())
    return bytes(private_key.sign(csr_der))


def verify_possession(certificate: x509.Certificate, csr_der: bytes, signature: bytes) -> None:
    key: Any = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            algorithm = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
            key.verify(signature, csr_der, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, csr_der, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, csr_der)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise PossessionError("the request is not signed by the presented certificate's key") from exc
