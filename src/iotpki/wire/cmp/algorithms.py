"""Signature and MAC algorithms of CMP messages and CRMF proofs of possession.

RFC 9481 §3 (signatures: ECDSA with SHA-2, RSA PKCS #1 v1.5 with SHA-2, RSASSA-PSS with
SHA-2 and MGF1 (verified only; we sign with PKCS #1 v1.5), Ed25519) and
§6.1 (MACs: PasswordBasedMac with HMAC-SHA1/SHA-2, RFC 4210 §5.1.3.1). The signature
algorithm is chosen from the key as `cryptography`'s builders choose it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc4055

from iotpki.wire.decoding import MALFORMED
from iotpki.wire.errors import PKIError
from iotpki.wire.keys import signature_hash_for


class SignatureCheckError(PKIError):
    """A signature that does not verify, or an algorithm that is not supported."""


class UnsupportedSignatureError(SignatureCheckError):
    """An algorithm (or parameters) we do not verify: badAlg, not badMessageCheck."""


_Hash = Callable[[], hashes.HashAlgorithm]
_ECDSA: dict[str, _Hash] = {"1.2.840.10045.4.3.2": hashes.SHA256, "1.2.840.10045.4.3.3": hashes.SHA384,
          "1.2.840.10045.4.3.4": hashes.SHA512}
_RSA: dict[str, _Hash] = {"1.2.840.113549.1.1.11": hashes.SHA256, "1.2.840.113549.1.1.12": hashes.SHA384,
        "1.2.840.113549.1.1.13": hashes.SHA512}
ED25519 = "1.3.101.112"
RSASSA_PSS = "1.2.840.113549.1.1.10"  # RFC 4055 §3.1, RFC 9481 §3.1.2
_MGF1, _SHA1 = "1.2.840.113549.1.1.8", "1.3.14.3.2.26"
_PSS_HASHES: dict[str, _Hash] = {"2.16.840.1.101.3.4.2.1": hashes.SHA256,
                                 "2.16.840.1.101.3.4.2.2": hashes.SHA384,
                                 "2.16.840.1.101.3.4.2.3": hashes.SHA512}
# RFC 9481 §6.1.1 / §6.2.1: the OWF and MAC of PasswordBasedMac, and the PRF and MAC of
# PBMAC1: SHA-1 and every SHA-2 function (RFC 6234; SHA-512/224 and SHA-512/256 of FIPS 180-4,
# with their HMAC OIDs of RFC 8018 §B.1.2).
HASHES: dict[str, _Hash] = {
    "1.3.14.3.2.26": hashes.SHA1, "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512, "2.16.840.1.101.3.4.2.5": hashes.SHA512_224,
    "2.16.840.1.101.3.4.2.6": hashes.SHA512_256}
HMACS: dict[str, _Hash] = {
    "1.3.6.1.5.5.8.1.2": hashes.SHA1, "1.2.840.113549.2.7": hashes.SHA1,
    "1.2.840.113549.2.8": hashes.SHA224, "1.2.840.113549.2.9": hashes.SHA256,
    "1.2.840.113549.2.10": hashes.SHA384, "1.2.840.113549.2.11": hashes.SHA512,
    "1.2.840.113549.2.12": hashes.SHA512_224, "1.2.840.113549.2.13": hashes.SHA512_256}
# RFC 9481 §6.2 key-based MACs: as protectionAlg they would MAC with the shared secret as
# the key, without a password-based key derivation; refused (badAlg), see docs/cmp.md.
KEY_BASED_MACS = frozenset({*HMACS, "2.16.840.1.101.3.4.2.19", "2.16.840.1.101.3.4.2.20",
                            "2.16.840.1.101.3.4.1.9", "2.16.840.1.101.3.4.1.29",
                            "2.16.840.1.101.3.4.1.49"})


def hashlib_name(algorithm: _Hash) -> str:
    """The name `hashlib` knows a `cryptography` hash by (sha512-224 → sha512_224)."""
    return algorithm().name.replace("-", "_")


def signature_algorithm_oid(key: Any) -> str:
    """The signatureAlgorithm OID a signature by `key` carries (RFC 9481 §3)."""
    hash_algorithm = signature_hash_for(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return next(o for o, h in _ECDSA.items() if h().name == getattr(hash_algorithm, "name", ""))
    if isinstance(key, rsa.RSAPrivateKey):
        return next(o for o, h in _RSA.items() if h().name == getattr(hash_algorithm, "name", ""))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ED25519
    raise SignatureCheckError(f"no CMP signature algorithm for {type(key).__name__}")


def is_signature_algorithm(algorithm: str) -> bool:
    return algorithm in _ECDSA or algorithm in _RSA or algorithm in (ED25519, RSASSA_PSS)


def verify_signature(public_key: Any, algorithm: str, signature: bytes, data: bytes,
                     parameters: bytes | None = None) -> None:
    """Raise `SignatureCheckError` unless `signature` over `data` verifies
    (`UnsupportedSignatureError` for an algorithm or parameters we do not verify)."""
    try:
        if algorithm in _ECDSA and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(_ECDSA[algorithm]()))
        elif algorithm in _RSA and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), _RSA[algorithm]())
        elif algorithm == RSASSA_PSS and isinstance(public_key, rsa.RSAPublicKey):
            pss, hash_algorithm = pss_parameters(parameters)
            public_key.verify(signature, data, pss, hash_algorithm)
        elif algorithm == ED25519 and isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            raise UnsupportedSignatureError(f"unsupported signature algorithm {algorithm} for "
                                            f"this key")
    except InvalidSignature as exc:
        raise SignatureCheckError("the signature does not verify") from exc


def pss_parameters(der: bytes | None) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    """RFC 9481 §3.1.2, RFC 4055 §3.1: RSASSA-PSS-params with SHA-256/384/512, MGF1 over the
    same hash, the trailer field 1; anything else is unsupported."""
    if der is None:
        raise UnsupportedSignatureError("RSASSA-PSS without parameters")
    try:
        value, rest = decoder.decode(der, asn1Spec=rfc4055.RSASSA_PSS_params())
        hash_oid = (str(value["hashAlgorithm"]["algorithm"]) if value["hashAlgorithm"].isValue
                    else _SHA1)
        mgf = value["maskGenAlgorithm"]
        mgf_hash = (str(decoder.decode(bytes(mgf["parameters"]))[0][0])
                    if mgf.isValue and mgf["parameters"].isValue else _SHA1)
        salt = int(value["saltLength"])
        unsupported = (rest or hash_oid not in _PSS_HASHES or mgf_hash != hash_oid
                       or (mgf.isValue and str(mgf["algorithm"]) != _MGF1)
                       or int(value["trailerField"]) != 1 or not 0 <= salt <= 512)
    except MALFORMED as exc:  # the parameters come from the client: any failure is theirs
        raise UnsupportedSignatureError("malformed RSASSA-PSS parameters") from exc
    if unsupported:
        raise UnsupportedSignatureError("RSASSA-PSS parameters outside RFC 9481 §3.1.2 "
                                        "(SHA-2, MGF1 with the same hash, trailer 1)")
    hash_algorithm = _PSS_HASHES[hash_oid]()
    return padding.PSS(padding.MGF1(hash_algorithm), salt), hash_algorithm
