"""Signing raw bytes (a TBS structure) with any `cryptography` private key.

RFC 5280 §4.1.1.2 / RFC 5758 §3.2 (ECDSA), RFC 4055 (RSA PKCS #1 v1.5), RFC 8410 (EdDSA):
the algorithm is chosen from the key as `cryptography`'s builders choose it, so a
structure we encode ourselves carries the same signatureAlgorithm as one it builds.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def sign_data(key: Any, data: bytes, hash_algorithm: hashes.HashAlgorithm | None) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert hash_algorithm is not None
        return key.sign(data, ec.ECDSA(hash_algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        assert hash_algorithm is not None
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)
    return bytes(key.sign(data))  # EdDSA, ML-DSA: the algorithm fixes the hash
