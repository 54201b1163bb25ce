"""Protection of CMP messages (RFC 9810 §5.1.3; algorithms of RFC 9481).

- MAC: PasswordBasedMac (RFC 9810 §5.1.3.1, RFC 9481 §6.1.1). The key is the OWF applied
  `iterationCount` times to secret || salt; the MAC is HMAC over DER(ProtectedPart).
  Iteration counts are bounded: below `MIN_ITERATIONS` the MAC is too weak to count as
  protection (badMessageCheck), above `MAX_ITERATIONS` the parameters are unsupported
  (badAlg), refused before any hashing so that one request cannot pin a CPU.
  PBMAC1 (RFC 9481 §6.1.1, RFC 8018 §7.1) in `wire.cmp.pbmac1`; an answer uses the
  algorithm of the request.
- Signature (RFC 9810 §5.1.3.3, RFC 9483 §3.2): the signer's certificate is the first of
  extraCerts; the signature is over DER(ProtectedPart).

Checks raise `ProtectionError` carrying the PKIFailureInfo bit a server answers with.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hmac as crypto_hmac
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_alt_modules import rfc9480

from iotpki.wire.cmp.algorithms import (
    HASHES,
    HMACS,
    KEY_BASED_MACS,
    SignatureCheckError,
    UnsupportedSignatureError,
    hashlib_name,
    is_signature_algorithm,
    signature_algorithm_oid,
    verify_signature,
)
from iotpki.wire.cmp.messages import PKIMessage
from iotpki.wire.cmp.pbmac1 import (
    PBMAC1,
    PBMAC1Error,
    PBMAC1Parameters,
    decode_pbmac1_parameters,
)
from iotpki.wire.errors import PKIError
from iotpki.wire.keys import signature_hash_for
from iotpki.wire.signature import sign_data

PASSWORD_BASED_MAC = str(rfc9480.id_PasswordBasedMac)
MIN_ITERATIONS = 100  # below RFC 9481's advice, but what some deployed clients send
MAX_ITERATIONS = 100_000
MAX_SALT = 64


class ProtectionError(PKIError):
    """A message whose protection is missing, malformed or wrong."""

    def __init__(self, failure: str, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure  # a PKIFailureInfo name (RFC 9810 §5.2.3)


@dataclass(frozen=True)
class PBMParameters:
    salt: bytes
    owf: str  # OID
    iterations: int
    mac: str  # OID

    def check(self) -> None:
        if self.owf not in HASHES or self.mac not in HMACS:
            raise ProtectionError("badAlg", "unsupported PasswordBasedMac OWF or MAC algorithm")
        if self.iterations < MIN_ITERATIONS:
            raise ProtectionError("badMessageCheck", f"PasswordBasedMac iteration count "
                                                     f"{self.iterations} is below "
                                                     f"{MIN_ITERATIONS}")
        if self.iterations > MAX_ITERATIONS:
            raise ProtectionError("badAlg", f"PasswordBasedMac iteration count "
                                            f"{self.iterations} is above {MAX_ITERATIONS}")
        if not 0 < len(self.salt) <= MAX_SALT:
            raise ProtectionError("badMessageCheck", "PasswordBasedMac salt length out of range")

    def mac_over(self, secret: bytes, data: bytes) -> bytes:
        self.check()
        # RFC 4211 §4.4: an iterated hash, which no C KDF computes; hashlib's constructor per
        # round is the cheapest Python can do (about 4x fewer cycles than `hashes.Hash`).
        name = hashlib_name(HASHES[self.owf])
        owf = getattr(hashlib, name, None) or functools.partial(hashlib.new, name)
        key = secret + self.salt
        for _ in range(self.iterations):
            key = owf(key).digest()
        tag = crypto_hmac.HMAC(key, HMACS[self.mac]())
        tag.update(data)
        return tag.finalize()

    def fresh(self) -> PBMParameters:
        """The same algorithms with a new salt, for the answer."""
        return PBMParameters(os.urandom(16), self.owf, self.iterations, self.mac)

    def encode(self) -> tuple[str, bytes]:
        """(id-PasswordBasedMac, DER of PBMParameter)."""
        parameters = rfc9480.PBMParameter()
        parameters["salt"] = self.salt
        parameters["owf"]["algorithm"] = univ.ObjectIdentifier(self.owf)
        parameters["iterationCount"] = self.iterations
        parameters["mac"]["algorithm"] = univ.ObjectIdentifier(self.mac)
        return PASSWORD_BASED_MAC, bytes(encoder.encode(parameters))


MACParameters = PBMParameters | PBMAC1Parameters


def decode_pbm_parameters(der: bytes | None) -> PBMParameters:
    if der is None:
        raise ProtectionError("badMessageCheck", "PasswordBasedMac without parameters")
    try:
        parameters, rest = decoder.decode(der, asn1Spec=rfc9480.PBMParameter())
        if rest:
            raise ProtectionError("badDataFormat", "trailing bytes after PBMParameter")
        return PBMParameters(parameters["salt"].asOctets(), str(parameters["owf"]["algorithm"]),
                             int(parameters["iterationCount"]),
                             str(parameters["mac"]["algorithm"]))
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise ProtectionError("badDataFormat", "malformed PBMParameter") from exc


def is_mac_protected(message: PKIMessage) -> bool:
    return message.header.protection_algorithm in (PASSWORD_BASED_MAC, PBMAC1)


def decode_mac_parameters(message: PKIMessage) -> MACParameters:
    """The PasswordBasedMac or PBMAC1 parameters of a MAC-protected message, checked."""
    der = message.header.protection_parameters
    try:
        if message.header.protection_algorithm == PBMAC1:
            parameters: MACParameters = decode_pbmac1_parameters(der)
        else:
            parameters = decode_pbm_parameters(der)
        parameters.check()
    except PBMAC1Error as exc:
        raise ProtectionError(exc.failure, str(exc)) from exc
    return parameters


def verify_mac(message: PKIMessage, secret: bytes) -> None:
    """RFC 9810 §5.1.3.1, RFC 9481 §6.1.1; raise `ProtectionError` unless the MAC is right."""
    parameters = decode_mac_parameters(message)
    if message.protection is None:
        raise ProtectionError("badMessageCheck", "the message carries no protection")
    expected = parameters.mac_over(secret, message.protected_part)
    if not hmac.compare_digest(expected, message.protection):
        raise ProtectionError("badMessageCheck", "the MAC does not verify")


def protection_signer(message: PKIMessage) -> x509.Certificate:
    """RFC 9483 §3.2: the protection certificate is the first certificate in extraCerts."""
    if not message.extra_certs:
        raise ProtectionError("signerNotTrusted", "signature protection without the signer's "
                                                  "certificate in extraCerts")
    return message.extra_certs[0]


def verify_signature_protection(message: PKIMessage) -> x509.Certificate:
    """RFC 9810 §5.1.3.3; returns the signer's certificate (its trust is the caller's to
    decide). A key-based MAC (RFC 9481 §6.2: HMAC, KMAC, AES-GMAC with a shared key) or any
    other algorithm that is not a signature we verify is badAlg, never tried as one."""
    algorithm = message.header.protection_algorithm
    if algorithm is None or message.protection is None:
        raise ProtectionError("badMessageCheck", "the message carries no protection")
    if not is_signature_algorithm(algorithm):
        kind = "key-based MAC" if algorithm in KEY_BASED_MACS else "protection algorithm"
        raise ProtectionError("badAlg", f"unsupported {kind} {algorithm} (RFC 9481: "
                                        f"PasswordBasedMac, PBMAC1 or a signature)")
    signer = protection_signer(message)
    try:
        public_key = signer.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:  # found by bench/fuzz_cmp.py
        raise ProtectionError("badDataFormat", f"the protection certificate's public key "
                                               f"cannot be read: {exc}") from exc
    try:
        verify_signature(public_key, algorithm, message.protection,
                         message.protected_part, message.header.protection_parameters)
    except UnsupportedSignatureError as exc:
        raise ProtectionError("badAlg", f"signature protection: {exc}") from exc
    except SignatureCheckError as exc:
        raise ProtectionError("badMessageCheck", f"signature protection: {exc}") from exc
    return signer


class MACProtection:
    """Protects an answer with the request's MAC algorithm (PasswordBasedMac or PBMAC1)
    under the same shared secret, with a fresh salt."""

    def __init__(self, secret: bytes, parameters: MACParameters) -> None:
        self._secret = secret
        self._parameters = parameters.fresh()

    def algorithm(self) -> tuple[str, bytes | None]:
        return self._parameters.encode()

    def protect(self, data: bytes) -> bytes:
        return self._parameters.mac_over(self._secret, data)

    @property
    def extra_certs(self) -> tuple[x509.Certificate, ...]:
        return ()

    @property
    def sender(self) -> x509.Name | None:
        return None

    @property
    def sender_kid(self) -> bytes | None:
        return None


class SignatureProtection:
    """Protects an answer with the CA's CMP protection key; its certificate and chain go
    into extraCerts (RFC 9483 §3.3)."""

    def __init__(self, key: Any, certificate: x509.Certificate,
                 chain: tuple[x509.Certificate, ...]) -> None:
        self._key = key
        self._certificate = certificate
        self._chain = chain

    def algorithm(self) -> tuple[str, bytes | None]:
        return signature_algorithm_oid(self._key), None

    @property
    def key(self) -> Any:
        return self._key

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def protect(self, data: bytes) -> bytes:
        return sign_data(self._key, data, signature_hash_for(self._key))

    @property
    def extra_certs(self) -> tuple[x509.Certificate, ...]:
        return (self._certificate, *self._chain)

    @property
    def sender(self) -> x509.Name | None:
        return self._certificate.subject

    @property
    def sender_kid(self) -> bytes | None:
        try:
            return self._certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            return None

