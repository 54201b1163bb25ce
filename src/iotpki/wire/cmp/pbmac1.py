"""PBMAC1 protection of CMP messages (RFC 9481 §6.1.1, RFC 8018 §7.1 and §5.2).

    PBMAC1-params ::= SEQUENCE { keyDerivationFunc  AlgorithmIdentifier (id-PBKDF2),
                                 messageAuthScheme  AlgorithmIdentifier (HMAC-SHA*) }

The MAC key is PBKDF2(secret, salt, iterationCount, keyLength, prf); the MAC is the
messageAuthScheme HMAC over DER(ProtectedPart). The salt must be `specified` (8 to 64
octets, RFC 8018 §4.1), keyLength (default: the HMAC output length) 16 to 64 octets, and
the iteration count within `MIN_ITERATIONS..MAX_ITERATIONS`: too few iterations make the
MAC too weak to count as protection (badMessageCheck), too many are refused before any
work as unsupported parameters (badAlg) so that one request cannot pin a CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc8018

from iotpki.wire.cmp.algorithms import HMACS
from iotpki.wire.cms_envelope import algorithm_id
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, tlv
from iotpki.wire.errors import PKIError

PBMAC1 = "1.2.840.113549.1.5.14"
PBKDF2 = "1.2.840.113549.1.5.12"
# BouncyCastle (at least to 1.80, and EJBCA with it) labels the PBKDF2 parameters of PBMAC1 with
# id-PBES2; the parameters are PBKDF2-params all the same. Accepted as an alias for interop;
# our answers carry id-PBKDF2 as RFC 8018 §A.5 says.
_PBKDF2_ALIASES = (PBKDF2, "1.2.840.113549.1.5.13")
HMAC_SHA1 = "1.2.840.113549.2.7"
MIN_ITERATIONS = 1000  # RFC 8018 §4.2
# Common client counts go up to 262,144 (2^18) and beyond; 600,000 is today's advice for
# PBKDF2-HMAC-SHA256 password storage. The cost is bounded by the server's throttle of failed
# MAC checks (`protocols.cmp.throttle`), not by refusing common counts.
MAX_ITERATIONS = 600_000
_NULL = b"\x05\x00"


class PBMAC1Error(PKIError):
    def __init__(self, failure: str, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure


@dataclass(frozen=True)
class PBMAC1Parameters:
    salt: bytes
    iterations: int
    key_length: int | None  # octets; None: the HMAC's output length
    prf: str  # HMAC OID of PBKDF2
    mac: str  # HMAC OID of the message authentication scheme

    def check(self) -> None:
        if self.prf not in HMACS or self.mac not in HMACS:
            raise PBMAC1Error("badAlg", "unsupported PBKDF2 PRF or PBMAC1 MAC algorithm")
        if self.iterations < MIN_ITERATIONS:
            raise PBMAC1Error("badMessageCheck", f"PBMAC1 iteration count {self.iterations} "
                                                 f"is below {MIN_ITERATIONS}")
        if self.iterations > MAX_ITERATIONS:
            raise PBMAC1Error("badAlg", f"PBMAC1 iteration count {self.iterations} is above "
                                        f"{MAX_ITERATIONS}")
        if not 8 <= len(self.salt) <= 64:
            raise PBMAC1Error("badMessageCheck", "PBMAC1 salt must have 8 to 64 octets")
        if self.key_length is not None and not 16 <= self.key_length <= 64:
            raise PBMAC1Error("badAlg", "PBMAC1 keyLength must be 16 to 64 octets")

    def mac_over(self, secret: bytes, data: bytes) -> bytes:
        self.check()
        mac_hash = HMACS[self.mac]()
        length = self.key_length or mac_hash.digest_size
        # PBKDF2 in C: OpenSSL through `cryptography`, which lets other threads run meanwhile
        # and takes half the CPU time of hashlib.pbkdf2_hmac on this platform (measured:
        # 31 ms against 60 ms for 262,144 iterations of HMAC-SHA256)
        key = PBKDF2HMAC(HMACS[self.prf](), length, self.salt, self.iterations).derive(secret)
        tag = crypto_hmac.HMAC(key, mac_hash)
        tag.update(data)
        return tag.finalize()

    def fresh(self) -> PBMAC1Parameters:
        """The same algorithms with a new salt, for the answer."""
        return replace(self, salt=os.urandom(16))

    def encode(self) -> tuple[str, bytes]:
        """(id-PBMAC1, DER of PBMAC1-params)."""
        kdf = (tlv(OCTET_STRING, self.salt) + _integer(self.iterations)
               + (_integer(self.key_length) if self.key_length is not None else b"")
               + (algorithm_id(self.prf, _NULL) if self.prf != HMAC_SHA1 else b""))
        parameters = tlv(SEQUENCE, algorithm_id(PBKDF2, tlv(SEQUENCE, kdf))
                         + algorithm_id(self.mac, _NULL))
        return PBMAC1, parameters


def _integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big"))


def decode_pbmac1_parameters(der: bytes | None) -> PBMAC1Parameters:
    """Raise `PBMAC1Error` for missing or malformed parameters (badMessageCheck /
    badDataFormat) or a key derivation other than PBKDF2 (badAlg)."""
    if der is None:
        raise PBMAC1Error("badMessageCheck", "PBMAC1 without parameters")
    try:
        parameters, rest = decoder.decode(der, asn1Spec=rfc8018.PBMAC1_params())
        kdf = parameters["keyDerivationFunc"]
        if rest or str(kdf["algorithm"]) not in _PBKDF2_ALIASES or not kdf["parameters"].isValue:
            raise PBMAC1Error("badAlg", "PBMAC1 key derivation must be PBKDF2 with parameters")
        pbkdf2, rest = decoder.decode(bytes(kdf["parameters"]), asn1Spec=rfc8018.PBKDF2_params())
        salt = pbkdf2["salt"]
        if rest or salt.getName() != "specified":
            raise PBMAC1Error("badAlg", "PBKDF2 salt must be specified (RFC 8018 §A.2)")
        key_length = int(pbkdf2["keyLength"]) if pbkdf2["keyLength"].isValue else None
        return PBMAC1Parameters(
            salt["specified"].asOctets(), int(pbkdf2["iterationCount"]), key_length,
            str(pbkdf2["prf"]["algorithm"]), str(parameters["messageAuthScheme"]["algorithm"]))
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise PBMAC1Error("badDataFormat", "malformed PBMAC1-params") from exc

