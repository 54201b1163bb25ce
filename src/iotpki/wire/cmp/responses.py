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
from iotpki.wire.der import BIT_STRING, INTEGER, SEQUENCE, tlv

_IMPLICIT_CONFIRM = rfc9480.id_it_implicitConfirm
FAILURE_BITS = ("badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
                "badDataFormat", "wrongAuthority", "incorrectData", "missingTimeStamp",
                "badPOP", "certRevoked", "certConfirmed", "wrongIntegrity",
                "badRecipientNonce", "timeNotAvailable", "unacceptedPolicy",
                "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
                "badCertTemplate", "signerNotTrusted", "transactionIdInUse",
                "unsupportedVersion", "notAuthorized", "systemUnavail", "systemFailure",
                "duplicateCertReq")
ACCEPTED, REJECTION, WAITING = 0, 2, 3  # PKIStatus (RFC 9810 §5.2.3)


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
    """The answer's DER. Certificates are spliced in as DER (pyasn1 would take milliseconds
    to re-encode each one)."""
    header = rfc9480.PKIHeader()
    _fill_header(header, request, protection, now, sender_nonce, implicit_confirm)
    if protection is not None:
        oid, parameters = protection.algorithm()
        header["protectionAlg"]["algorithm"] = univ.ObjectIdentifier(oid)
        if parameters is not None:
            header["protectionAlg"]["parameters"] = univ.Any(parameters)
    parts = bytes(encoder.encode(header)) + tlv(0xA0 | _BODY_TAGS[answer.kind], answer.der)
    if protection is not None:
        signature = protection.protect(tlv(SEQUENCE, parts))  # ProtectedPart, §5.1.3
        parts += tlv(0xA0, tlv(BIT_STRING, b"\x00" + signature))
    certificates = _unique((*(protection.extra_certs if protection else ()), *extra_certs))
    if certificates:
        parts += tlv(0xA1, tlv(SEQUENCE, b"".join(_der(c) for c in certificates)))
    return tlv(SEQUENCE, parts)


def _fill_header(header: Any, request: Header | None, protection: Protection | None,
                 now: datetime, sender_nonce: bytes, implicit_confirm: bool) -> None:
    header["pvno"] = request.pvno if request is not None and request.pvno in (2, 3) else 2
    sender = protection.sender if protection is not None else None
    header["sender"]["directoryName"]["rdnSequence"] = _name(sender)["rdnSequence"]
    recipient = _recipient(request)
    header["recipient"]["directoryName"]["rdnSequence"] = recipient["rdnSequence"]
    header["messageTime"] = now.strftime("%Y%m%d%H%M%SZ")
    if protection is not None and protection.sender_kid is not None:
        header["senderKID"] = protection.sender_kid
    header["transactionID"] = (request.transaction_id if request is not None
                               and request.transaction_id else os.urandom(16))
    header["senderNonce"] = sender_nonce
    if request is not None and request.sender_nonce:
        header["recipNonce"] = request.sender_nonce
    if implicit_confirm:
        info = rfc9480.InfoTypeAndValue()
        info["infoType"] = _IMPLICIT_CONFIRM
        info["infoValue"] = univ.Any(encoder.encode(univ.Null("")))
        header["generalInfo"].append(info)


def _unique(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: list[x509.Certificate] = []
    for certificate in certificates:
        if certificate not in seen:
            seen.append(certificate)
    return seen


def _recipient(request: Header | None) -> Any:
    """The request's sender if it was a directoryName (RFC 9483 §3.1), else the NULL-DN."""
    if request is not None and request.sender_der:
        sender = decoder.decode(request.sender_der, asn1Spec=rfc5280.GeneralName())[0]
        if sender.getName() == "directoryName":
            return sender["directoryName"]
    return _name(None)


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
