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
from iotpki.wire.der import SEQUENCE, tlv

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


@dataclass(frozen=True)
class Answer:
    """A body ready to send: its PKIBody choice name and its pyasn1 content setter."""

    kind: str
    content: Any


def new_nonce() -> bytes:
    """128 random bits (RFC 9483 §3.1)."""
    return os.urandom(16)


def encode_response(request: Header | None, answer: Answer, protection: Protection | None,
                    now: datetime, sender_nonce: bytes, implicit_confirm: bool = False,
                    extra_certs: Sequence[x509.Certificate] = ()) -> bytes:
    message = rfc9480.PKIMessage()
    header = message["header"]
    _fill_header(header, request, protection, now, sender_nonce, implicit_confirm)
    body = message["body"]
    body[answer.kind] = answer.content
    if protection is not None:
        oid, parameters = protection.algorithm()
        header["protectionAlg"]["algorithm"] = univ.ObjectIdentifier(oid)
        if parameters is not None:
            header["protectionAlg"]["parameters"] = univ.Any(parameters)
        protected = rfc9480.ProtectedPart()
        protected["header"] = header
        protected["body"] = body
        signature = protection.protect(bytes(encoder.encode(protected)))
        message["protection"] = message["protection"].clone(hexValue=signature.hex())
    for certificate in _unique((*(protection.extra_certs if protection else ()), *extra_certs)):
        message["extraCerts"].append(_cmp_certificate(certificate))
    return bytes(encoder.encode(message))


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


def _cmp_certificate(certificate: x509.Certificate) -> Any:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return decoder.decode(der, asn1Spec=rfc9480.CMPCertificate())[0]


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
    """ip, cp or kup (RFC 9483 §4.1.1): each certificate with its status."""
    content = rfc9480.PKIBody()[kind].clone()
    for certificate in ca_pubs:
        content["caPubs"].append(_cmp_certificate(certificate))
    for result in results:
        response = rfc9480.CertResponse()
        response["certReqId"] = result.cert_req_id
        response["status"] = _status_info(result.status)
        if result.certificate is not None:
            target = response["certifiedKeyPair"]["certOrEncCert"]["certificate"]
            decoded = _cmp_certificate(result.certificate)
            for field in ("tbsCertificate", "signatureAlgorithm", "signature"):
                target[field] = decoded[field]  # the [0]-tagged CMPCertificate (§5.3.4)
        content["response"].append(response)
    return Answer(kind, content)


def error_body(failure: str, detail: str) -> Answer:
    """RFC 9483 §3.6.4: a rejection with the failure bit and a readable reason."""
    content = rfc9480.PKIBody()["error"].clone()
    content["pKIStatusInfo"] = _status_info(Status(REJECTION, failure, detail))
    return Answer("error", content)


def pkiconf_body() -> Answer:
    return Answer("pkiconf", rfc9480.PKIBody()["pkiconf"].clone(""))


def rp_body(status: Status) -> Answer:
    """RFC 9483 §4.2: one status for the one certificate."""
    content = rfc9480.PKIBody()["rp"].clone()
    content["status"].append(_status_info(status))
    return Answer("rp", content)


def poll_rep_body(cert_req_id: int, check_after: int) -> Answer:
    """RFC 9483 §4.4: ask again after `check_after` seconds."""
    content = rfc9480.PKIBody()["pollRep"].clone()
    entry = content.componentType.clone()
    entry["certReqId"] = cert_req_id
    entry["checkAfter"] = check_after
    content.append(entry)
    return Answer("pollRep", content)


def genp_body(infos: Sequence[tuple[str, bytes | None]]) -> Answer:
    """RFC 9483 §4.3: (info type OID, DER of the value or None for an empty answer)."""
    content = rfc9480.PKIBody()["genp"].clone()
    for info_type, value in infos:
        info = rfc9480.InfoTypeAndValue()
        info["infoType"] = univ.ObjectIdentifier(info_type)
        if value is not None:
            info["infoValue"] = univ.Any(value)
        content.append(info)
    return Answer("genp", content)


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
