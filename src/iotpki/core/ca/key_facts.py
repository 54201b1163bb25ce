"""What the posture checks compare of a certificate's public key, stored with the certificate
so that they are indexed queries: the key's identity (the same key in two certificates,
whatever else differs) and its strength."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

# The smallest key of each algorithm that is not weak (NIST SP 800-57 Part 1 Rev. 5 §5.6.1:
# 112 bits of security at least: RSA and DSA 2048, elliptic curves 224; we ask 256, the
# smallest curve our profiles and RFC 8813's usual choices name). Others are never weak.
MINIMUM_BITS = {"rsa": 2048, "dsa": 2048, "ec": 256}


@dataclass(frozen=True)
class KeyFacts:
    key_id: str  # SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex
    algorithm: str  # rsa, ec, ed25519, ed448, dsa or other
    bits: int  # modulus (RSA, DSA) or field size (EC, Ed25519 255, Ed448 448); 0: unknown

    @classmethod
    def of(cls, key: CertificatePublicKeyTypes) -> KeyFacts:
        spki = key.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(hashlib.sha256(spki).hexdigest(), *_strength(key))

    @property
    def weak(self) -> bool:
        return self.bits < MINIMUM_BITS.get(self.algorithm, 0)

    def __str__(self) -> str:
        return f"{self.algorithm.upper()} {self.bits}" if self.bits else self.algorithm


def _strength(key: CertificatePublicKeyTypes) -> tuple[str, int]:
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 255
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 448
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size
    return "other", 0
