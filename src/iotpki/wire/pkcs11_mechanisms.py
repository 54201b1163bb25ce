"""Which PKCS#11 mechanism makes a given X.509 signature, and over which bytes.

Pure rules, no token library: mechanisms are named as PKCS#11 names them without the `CKM_`
prefix (`ECDSA`, `SHA256_RSA_PKCS`, ...), which is also how python-pkcs11 spells its
`Mechanism` members. The key backend and the device agent share them.

- ECDSA: CKM_ECDSA over the digest we computed (PKCS#11 v2.40 curr. mech. §2.3.6), or, on a
  token without it, CKM_ECDSA_SHA256/384/512 over the message.
- RSA PKCS#1 v1.5: CKM_RSA_PKCS over the DER DigestInfo (RFC 8017 §9.2 step 2, with the
  prefixes of its note 1), or CKM_SHA256_RSA_PKCS... over the message.
- RSA-PSS: CKM_RSA_PKCS_PSS over the digest with CK_RSA_PKCS_PSS_PARAMS (hash, MGF1 with the
  same hash, salt length; RFC 8017 §9.1), or CKM_SHA256_RSA_PKCS_PSS... over the message.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from iotpki.wire.errors import PKIError
from iotpki.wire.external_key import SignatureRequest

# RFC 8017 §9.2 note 1: DER of DigestInfo up to the digest octets.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# Mechanisms a token needs to generate and use each kind of key.
REQUIRED = {
    "ec": ("EC_KEY_PAIR_GEN", ("ECDSA", "ECDSA_SHA256", "ECDSA_SHA384")),
    "rsa": ("RSA_PKCS_KEY_PAIR_GEN", ("RSA_PKCS", "SHA256_RSA_PKCS")),
}


class MechanismUnavailableError(PKIError):
    """The token lacks every mechanism that could make the requested signature."""


@dataclass(frozen=True)
class TokenSignature:
    """`mechanism` over `data`; `pss` = (hash mechanism, MGF name, salt length) for PSS."""

    mechanism: str
    data: bytes
    pss: tuple[str, str, int] | None = None


def token_signature(request: SignatureRequest, available: Collection[str]) -> TokenSignature:
    """The mechanism and input for `request` on a token offering `available` mechanisms."""
    hash_name = request.hash.name
    if hash_name not in _DIGEST_INFO:
        raise MechanismUnavailableError(f"iotpki signs with SHA-256/384/512 on tokens, not "
                                        f"{hash_name}")
    suffix = hash_name.upper()
    if request.scheme == "ecdsa":
        return _pick(available, request, ("ECDSA", request.digest),
                     (f"ECDSA_{suffix}", request.message))
    if request.scheme == "rsa-pkcs1v15":
        return _pick(available, request, ("RSA_PKCS", _DIGEST_INFO[hash_name] + request.digest),
                     (f"{suffix}_RSA_PKCS", request.message))
    if request.scheme == "rsa-pss":
        salt = request.salt_length if request.salt_length is not None else request.hash.digest_size
        pss = (suffix, suffix, salt)
        choice = _pick(available, request, ("RSA_PKCS_PSS", request.digest),
                       (f"{suffix}_RSA_PKCS_PSS", request.message))
        return TokenSignature(choice.mechanism, choice.data, pss)
    raise MechanismUnavailableError(f"unknown signature scheme {request.scheme!r}")


def missing_mechanisms(kind: str, available: Collection[str]) -> list[str]:
    """What the token lacks to generate and sign with a `kind` (`ec`, `rsa`) key; [] if none."""
    generate, signing = REQUIRED[kind]
    missing = [] if generate in available else [f"CKM_{generate}"]
    if not any(m in available for m in signing):
        missing.append(" or ".join(f"CKM_{m}" for m in signing))
    return missing


def _pick(available: Collection[str], request: SignatureRequest,
          raw: tuple[str, bytes], hashing: tuple[str, bytes | None]) -> TokenSignature:
    if raw[0] in available:
        return TokenSignature(raw[0], raw[1])
    if hashing[0] in available and hashing[1] is not None:
        return TokenSignature(hashing[0], hashing[1])
    raise MechanismUnavailableError(
        f"the token offers neither CKM_{raw[0]} nor CKM_{hashing[0]} for a {request.scheme} "
        f"signature with {request.hash.name}")
