"""Encoding CMP answers (RFC 9810 §5; RFC 9483 §4 for what each answer holds).

`encode_response` builds the header of an answer to a request (RFC 9483 §3.1: same
transactionID, recipNonce = the request's senderNonce, a fresh senderNonce, messageTime),
protects it with the given protection and adds its extraCerts. The `*_body` functions
build the bodies: ip/cp/kup, pkiconf, rp, genp, pollRep and error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280, rfc9480

from iotpki.wire.cmp.messages import Header
from iotpki.wire.der import (
    BIT_STRING,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    generalized_time,
    object_identifier,
    read_tlv,
    tlv,
)

_DIRECTORY_NAME = 0xA4  # GeneralName [4] (RFC 5280 §4.2.1.6), explicit: Name is a CHOICE
_NULL_DN = tlv(SEQUENCE, b"")
# generalInfo: SEQUENCE OF InfoTypeAndValue { id-it-implicitConfirm, NULL } (RFC 9810 §5.1.1.1)
_IMPLICIT_CONFIRM_INFO = tlv(SEQUENCE, tlv(SEQUENCE, object_identifier(
    str(rfc9480.id_it_implicitConfirm)) + b"\x05\x00"))
FAILURE_BITS = ("badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
                "badDataFormat", "wrongAuthority", "incorrectData", "missingTimeStamp",
                "badPOP", "certRevoked", "certConfirmed", "wrongIntegrity",
                "badRecipientNonce", "timeNotAvailable", "unacceptedPolicy",
                "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
                "badCertTemplate", "signerNotTrusted", "transactionIdInUse",
                "unsupportedVersion", "notAuthorized", "systemUnavail", "systemFailure",
                "duplicateCertReq")
ACCEPTED, GRANTED_WITH_MODS, REJECTION, WAITING = 0, 1, 2, 3  # PKIStatus (RFC 9810 §5.2.3)


class Protection(Protocol):
    def algorithm(self) -> tuple[str, bytes | None]:
        """(OID, DER of the parameters) of protectionAlg."""
        ...

    def protect(self, data: bytes) -> bytes: ...

    @property
    def extra_certs(self) -> tuple[x509.Certificate, ...]: ...

    @property
    def sender(self) -> x509.Name | None: ...

    @property
    def sender_kid(self) -> bytes | None: ...


@dataclass(frozen=True)
class Status:
    status: int
    failure: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class CertResult:
    cert_req_id: int
    status: Status
    certificate: x509.Certificate | None = None
    private_key: bytes | None = None  # EncryptedKey DER (RFC 9483 §4.1.6 central keygen)


@dataclass(frozen=True)
class Answer:
    """A body ready to send: its PKIBody choice name and the DER inside its explicit tag."""

    kind: str
    der: bytes


# PKIBody choice numbers (RFC 9810 §5.1.2), EXPLICIT tags in the CMP module.
_BODY_TAGS = {"ip": 1, "cp": 3, "kup": 8, "rp": 12, "pkiconf": 19, "genp": 22, "error": 23,
              "pollRep": 26}


def new_nonce() -> bytes:
    """128 random bits (RFC 9483 §3.1)."""
    return os.urandom(16)


def encode_response(request: Header | None, answer: Answer, protection: Protection | None,
                    now: datetime, sender_nonce: bytes, implicit_confirm: bool = False,
                    extra_certs: Sequence[x509.Certificate] = ()) -> bytes:
    """The answer's DER, written with the DER helpers: header fields are a few fixed
    elements, and certificates are spliced in as DER (pyasn1 took about a millisecond for
    the header and milliseconds to re-encode each certificate)."""
    parts = _header(request, protection, now, sender_nonce, implicit_confirm) + tlv(
        0xA0 | _BODY_TAGS[answer.kind], answer.der)
    if protection is not None:
        signature = protection.protect(tlv(SEQUENCE, parts))  # ProtectedPart, §5.1.3
        parts += tlv(0xA0, tlv(BIT_STRING, b"\x00" + signature))
    certificates = _unique((*(protection.extra_certs if protection else ()), *extra_certs))
    if certificates:
        parts += tlv(0xA1, tlv(SEQUENCE, b"".join(_der(c) for c in certificates)))
    return tlv(SEQUENCE, parts)


def _header(request: Header | None, protection: Protection | None, now: datetime,
            sender_nonce: bytes, implicit_confirm: bool) -> bytes:
    """PKIHeader (RFC 9810 §5.1.1; EXPLICIT tags in the CMP module), RFC 9483 §3.1 fields."""
    pvno = request.pvno if request is not None and request.pvno in (2, 3) else 2
    sender = protection.sender if protection is not None else None
    fields = [tlv(INTEGER, bytes((pvno,))),
              tlv(_DIRECTORY_NAME, sender.public_bytes() if sender is not None else _NULL_DN),
              tlv(_DIRECTORY_NAME, _recipient(request)),
              tlv(0xA0, generalized_time(now))]
    if protection is not None:
        oid, parameters = protection.algorithm()
        fields.append(tlv(0xA1, tlv(SEQUENCE, object_identifier(oid) + (parameters or b""))))
        if protection.sender_kid is not None:
            fields.append(tlv(0xA2, tlv(OCTET_STRING, protection.sender_kid)))
    transaction_id = (request.transaction_id if request is not None and request.transaction_id
                      else os.urandom(16))
    fields += [tlv(0xA4, tlv(OCTET_STRING, transaction_id)),
               tlv(0xA5, tlv(OCTET_STRING, sender_nonce))]
    if request is not None and request.sender_nonce:
        fields.append(tlv(0xA6, tlv(OCTET_STRING, request.sender_nonce)))
    if implicit_confirm:
        fields.append(tlv(0xA8, _IMPLICIT_CONFIRM_INFO))
    return tlv(SEQUENCE, b"".join(fields))


def _unique(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: list[x509.Certificate] = []
    for certificate in certificates:
        if certificate not in seen:
            seen.append(certificate)
    return seen


def _recipient(request: Header | None) -> bytes:
    """The request's sender if it was a directoryName (RFC 9483 §3.1), else the NULL-DN.
    `sender_der` is the GeneralName as the codec re-encoded it: [4] EXPLICIT Name."""
    if request is not None and request.sender_der and request.sender_der[0] == _DIRECTORY_NAME:
        _, start, end = read_tlv(request.sender_der, 0)
        return request.sender_der[start:end]
    return _NULL_DN


def _name(name: x509.Name | None) -> Any:
    der = name.public_bytes() if name is not None else b"\x30\x00"
    return decoder.decode(der, asn1Spec=rfc5280.Name())[0]


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True))


def _status_info(status: Status) -> Any:
    info = rfc9480.PKIStatusInfo()
    info["status"] = status.status
    if status.detail:
        info["statusString"].append(status.detail[:500])
    if status.failure is not None:
        bit = FAILURE_BITS.index(status.failure)
        info["failInfo"] = info["failInfo"].clone(binValue="0" * bit + "1")
    return info


def cert_rep_body(kind: str, results: Sequence[CertResult],
                  ca_pubs: Sequence[x509.Certificate] = ()) -> Answer:
    """ip, cp or kup (RFC 9483 §4.1.1): each certificate with its status; CertOrEncCert's
    certificate is [0] EXPLICIT CMPCertificate, caPubs [1] EXPLICIT (RFC 9810 §5.3.4)."""
    responses = b""
    for result in results:
        status = bytes(encoder.encode(_status_info(result.status)))
        key = tlv(0xA0, result.private_key) if result.private_key is not None else b""
        pair = (tlv(SEQUENCE, tlv(0xA0, _der(result.certificate)) + key)
                if result.certificate is not None else b"")
        responses += tlv(SEQUENCE, _integer(result.cert_req_id) + status + pair)
    pubs = tlv(0xA1, tlv(SEQUENCE, b"".join(_der(c) for c in ca_pubs))) if ca_pubs else b""
    return Answer(kind, tlv(SEQUENCE, pubs + tlv(SEQUENCE, responses)))


def error_body(failure: str, detail: str) -> Answer:
    """RFC 9483 §3.6.4: a rejection with the failure bit and a readable reason."""
    content = rfc9480.ErrorMsgContent()
    content["pKIStatusInfo"] = _status_info(Status(REJECTION, failure, detail))
    return Answer("error", bytes(encoder.encode(content)))


def pkiconf_body() -> Answer:
    return Answer("pkiconf", b"\x05\x00")  # PKIConfirmContent ::= NULL


def rp_body(status: Status) -> Answer:
    """RFC 9483 §4.2: one status for the one certificate."""
    content = rfc9480.RevRepContent()
    content["status"].append(_status_info(status))
    return Answer("rp", bytes(encoder.encode(content)))


def poll_rep_body(cert_req_id: int, check_after: int) -> Answer:
    """RFC 9483 §4.4: ask again after `check_after` seconds."""
    entry = tlv(SEQUENCE, _integer(cert_req_id) + _integer(check_after))
    return Answer("pollRep", tlv(SEQUENCE, entry))


def genp_body(infos: Sequence[tuple[str, bytes | None]]) -> Answer:
    """RFC 9483 §4.3: (info type OID, DER of the value or None for an empty answer)."""
    content = rfc9480.GenRepContent()
    for info_type, value in infos:
        info = rfc9480.InfoTypeAndValue()
        info["infoType"] = univ.ObjectIdentifier(info_type)
        if value is not None:
            info["infoValue"] = univ.Any(value)
        content.append(info)
    return Answer("genp", bytes(encoder.encode(content)))


def ca_certs_value(certificates: Sequence[x509.Certificate]) -> bytes:
    """id-it-caCerts (RFC 9483 §4.3.1): SEQUENCE OF CMPCertificate."""
    return tlv(SEQUENCE, b"".join(c.public_bytes(serialization.Encoding.DER)
                                  for c in certificates))


def cert_req_template_value(subject: x509.Name | None,
                            key_algorithm: tuple[str, bytes | None] | None) -> bytes:
    """id-it-certReqTemplate (RFC 9483 §4.3.3): CertReqTemplateContent; `key_algorithm` is
    (OID, DER of the parameters) for the id-regCtrl-algId control of keySpec."""
    content = rfc9480.CertReqTemplateContent()
    template = content["certTemplate"]
    if subject is not None:
        template["subject"]["rdnSequence"] = _name(subject)["rdnSequence"]
    if key_algorithm is not None:
        control = rfc9480.AttributeTypeAndValue()
        control["type"] = rfc9480.id_regCtrl_algId
        algorithm = rfc5280.AlgorithmIdentifier()
        algorithm["algorithm"] = univ.ObjectIdentifier(key_algorithm[0])
        if key_algorithm[1] is not None:
            algorithm["parameters"] = univ.Any(key_algorithm[1])
        control["value"] = univ.Any(encoder.encode(algorithm))
        content["keySpec"].append(control)
    return bytes(encoder.encode(content))


def algorithm_identifier(algorithm: str, parameters: bytes | None) -> bytes:
    """AlgorithmIdentifier DER (RFC 5280 §4.1.1.2): OID and, if given, the parameters DER."""
    return tlv(SEQUENCE, object_identifier(algorithm) + (parameters or b""))
