"""Key type names used in profiles, on the CLI and in the API.

One name per algorithm and size, so that a profile's allowed list is explicit:
`ec-p256`, `ec-p384`, `ed25519`, `rsa-2048`, `rsa-3072`, `rsa-4096`,
`ml-dsa-44`, `ml-dsa-65`, `ml-dsa-87` (FIPS 204, where `cryptography` has it).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from iotpki.wire.errors import PKIError

try:  # ML-DSA arrived in cryptography 47; older releases simply lack the names.
    from cryptography.hazmat.primitives.asymmetric import mldsa

    _MLDSA: dict[str, Any] = {
        "ml-dsa-44": mldsa.MLDSA44PrivateKey,
        "ml-dsa-65": mldsa.MLDSA65PrivateKey,
        "ml-dsa-87": mldsa.MLDSA87PrivateKey,
    }
    _MLDSA_PUBLIC: dict[type[Any], str] = {
        mldsa.MLDSA44PublicKey: "ml-dsa-44",
        mldsa.MLDSA65PublicKey: "ml-dsa-65",
        mldsa.MLDSA87PublicKey: "ml-dsa-87",
    }
except ImportError:  # pragma: no cover - depends on the installed release
    _MLDSA = {}
    _MLDSA_PUBLIC = {}

_CURVES: dict[str, ec.EllipticCurve] = {"ec-p256": ec.SECP256R1(), "ec-p384": ec.SECP384R1()}
_RSA_SIZES = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}

KEY_TYPES: tuple[str, ...] = (*_CURVES, "ed25519", *_RSA_SIZES, *_MLDSA)


class UnsupportedKeyError(PKIError):
    """A key algorithm or size that iotpki does not issue for or sign with."""


def generate_private_key(key_type: str) -> Any:
    """A fresh private key of a named type (software, in memory)."""
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type in _RSA_SIZES:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_SIZES[key_type])
    if key_type in _MLDSA:
        return _MLDSA[key_type].generate()
    raise UnsupportedKeyError(f"unsupported key type {key_type!r}; known: {', '.join(KEY_TYPES)}")


def key_type_of(public_key: Any) -> str:
    """The profile name of a public key's algorithm and size, or raise."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        name = {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(public_key.curve.name)
        if name is None:
            raise UnsupportedKeyError(f"unsupported elliptic curve {public_key.curve.name}")
        return name
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        name = f"rsa-{public_key.key_size}"
        if name not in _RSA_SIZES:
            raise UnsupportedKeyError(
                f"unsupported RSA key size {public_key.key_size} (allowed: 2048, 3072, 4096)"
            )
        return name
    for cls, name in _MLDSA_PUBLIC.items():
        if isinstance(public_key, cls):
            return name
    raise UnsupportedKeyError(f"unsupported key algorithm {type(public_key).__name__}")


def signature_hash_for(private_key: Any) -> hashes.SHA256 | hashes.SHA384 | None:
    """The hash to pass to `sign()`: none for EdDSA and ML-DSA, else matched to the key size."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return hashes.SHA384() if private_key.curve.key_size >= 384 else hashes.SHA256()
    if isinstance(private_key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    return None
