"""Encoding CMP requests, for clients (the device agent, benchmarks, tests): a CRMF
CertReqMsg with a signature proof of possession (RFC 4211 §4.1, RFC 9483 §4.1.1), a
PKIMessage around it protected by a signature or a PasswordBasedMac (RFC 9810 §5.1,
RFC 9483 §3.2), certConf (RFC 9483 §4.1.1) and genm (§4.3).

Written with the DER helpers directly (X.690 §8; the CMP module uses EXPLICIT tags,
CRMF IMPLICIT ones): a few fixed structures, and several times faster than pyasn1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.wire.cmp.algorithms import signature_algorithm_oid
from iotpki.wire.der import (
    BIT_STRING,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    generalized_time,
    tlv,
)
from iotpki.wire.der import object_identifier as _oid
from iotpki.wire.keys import signature_hash_for
from iotpki.wire.signature import sign_data

# PKIBody choice numbers (RFC 9810 §5.1.2), EXPLICIT tags in the CMP module.
_BODY_TAGS = {"ir": 0xA0, "cr": 0xA2, "p10cr": 0xA4, "kur": 0xA7, "rr": 0xAB, "genm": 0xB5,
              "error": 0xB7, "certConf": 0xB8, "pollReq": 0xB9}
_IMPLICIT_INFO = tlv(SEQUENCE, bytes.fromhex("06082b0601050507040d") + b"\x05\x00")
_IMPLICIT_CONFIRM = tlv(SEQUENCE, _IMPLICIT_INFO)


def _signature(key: Any, data: bytes) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier DER, BIT STRING DER) of a signature by `key` over `data`."""
    algorithm = tlv(SEQUENCE, _oid(signature_algorithm_oid(key)))
    return algorithm, tlv(BIT_STRING, b"\x00" + sign_data(key, data, signature_hash_for(key)))


def encode_cert_req_msg(new_key: Any, subject: x509.Name, cert_req_id: int = 0) -> bytes:
    """CertReqMsg: template with subject and public key, POPOSigningKey by `new_key`."""
    spki = new_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    template = tlv(SEQUENCE, tlv(0xA5, subject.public_bytes()) + bytes((0xA6,)) + spki[1:])
    cert_request = tlv(SEQUENCE, tlv(INTEGER, bytes((cert_req_id,))) + template)
    algorithm, signature = _signature(new_key, cert_request)
    return tlv(SEQUENCE, cert_request + tlv(0xA1, algorithm + signature))


def encode_signed_request(kind: str, cert_req_msg: bytes, key: Any,
                          chain: tuple[x509.Certificate, ...], now: datetime,
                          implicit_confirm: bool = True) -> bytes:
    """A PKIMessage (ir, cr or kur) signed by `key`; `chain[0]` is its certificate."""
    header = RequestHeader(chain[0].subject, sender_kid=subject_key_id(chain[0]),
                           implicit_confirm=implicit_confirm)
    return encode_request(header, kind, tlv(SEQUENCE, cert_req_msg),
                          KeySignature(key), now, chain)


class RequestProtection(Protocol):
    """What protects a request: `protection.MACProtection` or `KeySignature`."""

    def algorithm(self) -> tuple[str, bytes | None]: ...

    def protect(self, data: bytes) -> bytes: ...


class KeySignature:
    """Signature protection by any private key object (software or token), RFC 9483 §3.2."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def algorithm(self) -> tuple[str, bytes | None]:
        return signature_algorithm_oid(self._key), None

    def protect(self, data: bytes) -> bytes:
        return sign_data(self._key, data, signature_hash_for(self._key))


@dataclass(frozen=True)
class RequestHeader:
    """The header fields a client chooses (RFC 9483 §3.1); fresh transactionID and
    senderNonce of 128 bits unless given (certConf reuses the transaction's). An empty
    transactionID or senderNonce is left out; `general_info` holds further
    InfoTypeAndValue DERs and `sender_der` a GeneralName other than the directoryName of
    `sender` (both for conformance tests of servers)."""

    sender: x509.Name
    sender_kid: bytes | None = None
    implicit_confirm: bool = False
    recip_nonce: bytes | None = None
    transaction_id: bytes = field(default_factory=lambda: os.urandom(16))
    sender_nonce: bytes = field(default_factory=lambda: os.urandom(16))
    pvno: int = 2
    general_info: tuple[bytes, ...] = ()
    sender_der: bytes | None = None


def encode_request(header: RequestHeader, kind: str, body: bytes,
                   protection: RequestProtection, now: datetime,
                   extra_certs: Sequence[x509.Certificate] = ()) -> bytes:
    """A protected PKIMessage; `body` is the DER inside the body's explicit tag. The
    signer's certificate goes first in extraCerts (RFC 9483 §3.3)."""
    oid, parameters = protection.algorithm()
    algorithm = tlv(SEQUENCE, _oid(oid) + (parameters or b""))
    info: tuple[bytes, ...] = (_IMPLICIT_INFO,) if header.implicit_confirm else ()
    info += header.general_info
    fields = b"".join((
        tlv(INTEGER, bytes((header.pvno,))),
        header.sender_der or tlv(0xA4, header.sender.public_bytes()),
        tlv(0xA4, tlv(SEQUENCE, b"")), tlv(0xA0, generalized_time(now)),
        tlv(0xA1, algorithm),
        tlv(0xA2, tlv(OCTET_STRING, header.sender_kid)) if header.sender_kid else b"",
        tlv(0xA4, tlv(OCTET_STRING, header.transaction_id)) if header.transaction_id else b"",
        tlv(0xA5, tlv(OCTET_STRING, header.sender_nonce)) if header.sender_nonce else b"",
        tlv(0xA6, tlv(OCTET_STRING, header.recip_nonce)) if header.recip_nonce else b"",
        tlv(0xA8, tlv(SEQUENCE, b"".join(info))) if info else b""))
    protected = tlv(SEQUENCE, fields) + tlv(_BODY_TAGS[kind], body)
    signature = protection.protect(tlv(SEQUENCE, protected))  # ProtectedPart, RFC 9810 §5.1.3
    message = protected + tlv(0xA0, tlv(BIT_STRING, b"\x00" + signature))
    if extra_certs:
        message += tlv(0xA1, tlv(SEQUENCE, b"".join(
            c.public_bytes(serialization.Encoding.DER) for c in extra_certs)))
    return tlv(SEQUENCE, message)


def cert_conf_body(cert_hash: bytes, cert_req_id: int = 0) -> bytes:
    """certConf content (RFC 9483 §4.1.1): one CertStatus accepting the certificate."""
    return tlv(SEQUENCE, tlv(SEQUENCE, tlv(OCTET_STRING, cert_hash)
                             + tlv(INTEGER, bytes((cert_req_id,)))))


def genm_body(info_types: Sequence[str]) -> bytes:
    """genm content (RFC 9483 §4.3): InfoTypeAndValue without values."""
    return tlv(SEQUENCE, b"".join(tlv(SEQUENCE, _oid(t)) for t in info_types))


def subject_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None
