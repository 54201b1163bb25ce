"""Decoding CMP messages (RFC 9810 §5.1, profiled by RFC 9483 §3).

`decode_pki_message(der) -> PKIMessage` turns the DER of a request into protocol-neutral
values: the header fields that the transaction and replay checks read (RFC 9483 §3.1),
the protected part as it was signed or MACed (RFC 9810 §5.1.3), the extraCerts, and a
typed body for the request kinds a Lightweight CMP server answers (§4). Anything else
raises `DecodeError` (answered with badDataFormat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc9480

import iotpki.wire.asn1_cost  # noqa: F401  (pyasn1 errors must stay cheap)
from iotpki.wire.cmp.crmf import CRMFRequest, decode_crmf_request
from iotpki.wire.cmp.header_der import NotReadError, read_header_fields
from iotpki.wire.cmp.tlv import check_tlv_tree
from iotpki.wire.decoding import MALFORMED
from iotpki.wire.der import BIT_STRING, SEQUENCE, children, read_tlv, tlv
from iotpki.wire.errors import DecodeError

MAX_MESSAGE = 256 * 1024  # RFC 9483 messages are a few KiB; bound the decoder's work
_IMPLICIT_CONFIRM = str(rfc9480.id_it_implicitConfirm)
_REASON_CODE = "2.5.29.21"  # RFC 5280 §5.3.1 CRL entry extension in rr (RFC 9483 §4.2)
_CERT_REQUESTS = {0xA0: "ir", 0xA2: "cr", 0xA7: "kur"}  # PKIBody choices (RFC 9810 §5.1.2)


@dataclass(frozen=True)
class Header:
    pvno: int
    transaction_id: bytes | None
    sender_nonce: bytes | None
    recip_nonce: bytes | None
    message_time: datetime | None
    sender_kid: bytes | None
    protection_algorithm: str | None  # OID
    protection_parameters: bytes | None  # DER of the algorithm's parameters
    implicit_confirm: bool
    sender_der: bytes  # the GeneralName, echoed as the recipient of the answer
    # generalInfo (RFC 9810 §5.1.1): (infoType OID, DER of infoValue or None) in order
    general_info: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def sender_name(self) -> bytes | None:
        """DER of the sender's Name if the sender is a directoryName ([4] EXPLICIT), else
        None (RFC 9483 §3.1: a name of the originator)."""
        if not self.sender_der or self.sender_der[0] != 0xA4:
            return None
        _, start, end = read_tlv(self.sender_der, 0)
        return self.sender_der[start:end]


@dataclass(frozen=True)
class CertRequests:
    """ir, cr, kur (RFC 9483 §4.1.1-§4.1.3)."""

    requests: tuple[CRMFRequest, ...]


@dataclass(frozen=True)
class P10Request:
    """p10cr (RFC 9483 §4.1.4)."""

    csr: bytes


@dataclass(frozen=True)
class CertConfirmation:
    """certConf (RFC 9483 §4.1.1): accepted or rejected per certificate."""

    cert_hash: bytes
    cert_req_id: int
    accepted: bool
    hash_algorithm: str | None  # OID, RFC 9810 §5.3.18 (hashAlg, cmp2021)
    status: int | None = None  # PKIStatus of statusInfo, None without one
    has_fail_info: bool = False


@dataclass(frozen=True)
class RevocationRequest:
    """rr (RFC 9483 §4.2): issuer and serial of one certificate, with a reason code."""

    issuer_der: bytes | None
    serial: int | None
    reason: int | None
    reasons: tuple[int, ...] = ()  # every reasonCode extension (RFC 9483 §4.2: exactly one)
    subject_der: bytes | None = None  # the template's subject Name, if present
    public_key_der: bytes | None = None  # the template's SubjectPublicKeyInfo, if present


@dataclass(frozen=True)
class GeneralMessage:
    """genm (RFC 9483 §4.3): the info types asked for, and any values sent with them."""

    info_types: tuple[str, ...]
    values: tuple[bytes | None, ...] = ()  # DER of each infoValue, in order


@dataclass(frozen=True)
class PollRequest:
    """pollReq (RFC 9483 §4.4)."""

    cert_req_id: int


@dataclass(frozen=True)
class ErrorReport:
    """An error message (RFC 9483 §3.6.4), from a client or, read by a client, a server."""

    detail: str
    failures: tuple[str, ...] = ()  # PKIFailureInfo bit names


@dataclass(frozen=True)
class CertResponse:
    """One CertResponse of an ip, cp or kup (RFC 9810 §5.3.4), read by a client."""

    cert_req_id: int
    status: int  # PKIStatus: 0 accepted, 1 grantedWithMods, 2 rejection, 3 waiting
    failures: tuple[str, ...]
    detail: str
    certificate: x509.Certificate | None


@dataclass(frozen=True)
class CertResponses:
    """ip, cp, kup (RFC 9483 §4.1.1): the responses and the caPubs."""

    responses: tuple[CertResponse, ...]
    ca_pubs: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class GeneralResponse:
    """genp (RFC 9483 §4.3): (info type OID, DER of the value or None) per answer."""

    infos: tuple[tuple[str, bytes | None], ...]


Body = (CertRequests | P10Request | tuple[CertConfirmation, ...] | RevocationRequest
        | GeneralMessage | PollRequest | ErrorReport | CertResponses | GeneralResponse | None)


@dataclass(frozen=True)
class PKIMessage:
    header: Header
    body_type: str  # the PKIBody choice name: ir, cr, kur, p10cr, certConf, rr, genm, ...
    body: Body
    protected_part: bytes  # DER of ProtectedPart (RFC 9810 §5.1.3)
    protection: bytes | None
    extra_certs: tuple[x509.Certificate, ...]


def decode_pki_message(der: bytes) -> PKIMessage:
    """Raise `DecodeError` for anything that is not one well-formed PKIMessage.

    The message is split with the DER walker; pyasn1 decodes only the header and the body,
    and `cryptography` the extraCerts (pyasn1 takes milliseconds per certificate). The
    protected part is the header and body exactly as received (RFC 9810 §5.1.3)."""
    if not der or len(der) > MAX_MESSAGE:
        raise DecodeError("empty or oversized CMP message")
    header, body, protection, extra = split_message(der)
    try:
        header_value = _decode_header(header)
        kind, content = _cert_requests(body) if body[0] in _CERT_REQUESTS else _pkibody(body)
        return PKIMessage(
            header=header_value, body_type=kind, body=content,
            protected_part=tlv(SEQUENCE, header + body), protection=protection,
            extra_certs=_extra_certs(extra))
    except DecodeError:
        raise
    except (PyAsn1Error, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, UnicodeError) as exc:
        raise DecodeError(f"malformed PKIMessage: {exc.__class__.__name__}") from exc


def split_message(der: bytes) -> tuple[bytes, bytes, bytes | None, bytes | None]:
    """(header, body, protection bits, extraCerts content) of a PKIMessage (RFC 9810 §5.1),
    after a cheap walk over the whole TLV tree: pyasn1 spends up to a third of a second
    formatting its error for garbage, so garbage must not reach it."""
    tag, start, end = read_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise DecodeError("not a DER SEQUENCE")
    check_tlv_tree(der)
    elements = [der[s:e] for _, s, e in children(der, start, end)]
    if (len(elements) < 2 or elements[0][0] != 0x30 or not 0xA0 <= elements[1][0] <= 0xBA
            or len(elements) > 4):
        raise DecodeError("not a PKIMessage (header SEQUENCE, then a tagged body)")
    optional = {e[0]: e for e in elements[2:]}
    if len(optional) != len(elements) - 2 or not set(optional) <= {0xA0, 0xA1}:
        raise DecodeError("unexpected element after the PKIMessage body")
    protection = _bit_string(_inner(optional[0xA0])) if 0xA0 in optional else None
    extra = _inner(optional[0xA1]) if 0xA1 in optional else None
    return elements[0], elements[1], protection, extra


def _inner(element: bytes) -> bytes:
    """The one element inside an EXPLICIT tag."""
    _, start, end = read_tlv(element, 0)
    inner = element[start:end]
    if not inner or read_tlv(inner, 0)[2] != len(inner):
        raise DecodeError("an explicit tag must hold exactly one element")
    return inner


def _bit_string(element: bytes) -> bytes:
    tag, start, end = read_tlv(element, 0)
    if tag != BIT_STRING or end == start or element[start] != 0:
        raise DecodeError("protection is not a BIT STRING of whole octets")
    return element[start + 1:end]


def _pkibody(body: bytes) -> tuple[str, Body]:
    value = _decode_exactly(body, rfc9480.PKIBody())
    kind = value.getName()
    return kind, _body(kind, value[kind])


def _cert_requests(body: bytes) -> tuple[str, Body]:
    """ir, cr, kur: [n] EXPLICIT CertReqMessages, SEQUENCE SIZE (1..MAX) OF CertReqMsg (RFC
    9810 §5.1.2, RFC 4211 §3), split with the DER walker; each CertReqMsg is decoded once,
    by `CRMFRequest` (pyasn1 would decode the body, re-encode each message, decode it again)."""
    messages = _inner(body)
    tag, start, end = read_tlv(messages, 0)
    if tag != SEQUENCE or start == end:
        raise DecodeError("malformed PKIMessage: CertReqMessages is no SEQUENCE of CertReqMsg")
    try:
        requests = tuple(decode_crmf_request(messages[s:e], tree_checked=True)
                         for _, s, e in children(messages, start, end))
    except DecodeError as exc:
        if isinstance(exc.__cause__, PyAsn1Error | ValueError | TypeError):  # as for the body
            raise DecodeError(f"malformed PKIMessage: {exc.__cause__.__class__.__name__}") from exc
        raise
    return _CERT_REQUESTS[body[0]], CertRequests(requests)


def _decode_exactly(der: bytes, spec: Any) -> Any:
    value, rest = decoder.decode(der, asn1Spec=spec)
    if rest:
        raise DecodeError("trailing bytes in the PKIMessage")
    return value


def _decode_header(der: bytes) -> Header:
    """The DER walker reads the common shape (`wire.cmp.header_der`), pyasn1 the rest."""
    try:
        fields = read_header_fields(der)
    except NotReadError:
        return _header(_decode_exactly(der, rfc9480.PKIHeader()))
    return Header(
        pvno=fields.pvno, transaction_id=fields.transaction_id,
        sender_nonce=fields.sender_nonce, recip_nonce=fields.recip_nonce,
        message_time=fields.message_time, sender_kid=fields.sender_kid,
        protection_algorithm=fields.protection_algorithm,
        protection_parameters=fields.protection_parameters,
        implicit_confirm=any(oid == _IMPLICIT_CONFIRM for oid, _ in fields.general_info),
        sender_der=fields.sender_der, general_info=fields.general_info)


def _octets(value: Any) -> bytes | None:
    return bytes(value.asOctets()) if value.isValue else None


def _header(header: Any) -> Header:
    algorithm = header["protectionAlg"]
    parameters = None
    if algorithm.isValue and algorithm["parameters"].isValue:
        parameters = bytes(algorithm["parameters"])
    time = header["messageTime"]
    info = header["generalInfo"]
    general = tuple((str(i["infoType"]),
                     bytes(i["infoValue"]) if i["infoValue"].isValue else None)
                    for i in (info if info.isValue else ()))
    implicit = any(oid == _IMPLICIT_CONFIRM for oid, _ in general)
    return Header(
        pvno=int(header["pvno"]), transaction_id=_octets(header["transactionID"]),
        sender_nonce=_octets(header["senderNonce"]), recip_nonce=_octets(header["recipNonce"]),
        message_time=time.asDateTime.astimezone(UTC) if time.isValue else None,
        sender_kid=_octets(header["senderKID"]),
        protection_algorithm=str(algorithm["algorithm"]) if algorithm.isValue else None,
        protection_parameters=parameters, implicit_confirm=bool(implicit),
        sender_der=bytes(encoder.encode(header["sender"])), general_info=general)


def _extra_certs(extra: bytes | None) -> tuple[x509.Certificate, ...]:
    if extra is None:
        return ()
    tag, start, end = read_tlv(extra, 0)
    if tag != SEQUENCE:
        raise DecodeError("extraCerts is not a SEQUENCE")
    try:
        return tuple(_parsed(x509.load_der_x509_certificate(extra[s:e]))
                     for _, s, e in children(extra, start, end))
    except MALFORMED as exc:  # x509.InvalidVersion is no ValueError
        raise DecodeError("malformed certificate in extraCerts") from exc


def _parsed(certificate: x509.Certificate) -> x509.Certificate:
    """`cryptography` parses a certificate's fields when first read: read the ones the
    server uses now, so that a malformed issuer, subject or extension is badDataFormat here
    and not an exception deep in the server (found by bench/fuzz_cmp.py)."""
    _ = (certificate.issuer, certificate.subject, certificate.serial_number,
         certificate.extensions, certificate.not_valid_before_utc,
         certificate.not_valid_after_utc)
    return certificate


def _body(kind: str, content: Any) -> Body:
    if kind == "p10cr":
        tagged = bytes(encoder.encode(content))  # [4] EXPLICIT (RFC 9810 Appendix F)
        _, start, end = read_tlv(tagged, 0)
        return P10Request(tagged[start:end])
    if kind == "certConf":
        return tuple(_cert_status(s) for s in content)
    if kind == "rr":
        return _revocation(content)
    if kind == "genm":
        return GeneralMessage(tuple(str(i["infoType"]) for i in content), tuple(
            bytes(i["infoValue"]) if i["infoValue"].isValue else None for i in content))
    if kind == "pollReq":
        return PollRequest(int(content[0]["certReqId"]))
    if kind == "error":
        info = content["pKIStatusInfo"]
        return ErrorReport(_free_text(info["statusString"]), _failures(info))
    if kind in ("ip", "cp", "kup"):
        return _cert_responses(content)
    if kind == "genp":
        return GeneralResponse(tuple(
            (str(i["infoType"]), bytes(i["infoValue"]) if i["infoValue"].isValue else None)
            for i in content))
    return None  # not a request a Lightweight CMP server serves; the core answers badRequest


def _cert_status(status: Any) -> CertConfirmation:
    info = status["statusInfo"]
    accepted = not info.isValue or int(info["status"]) in (0, 1)
    algorithm = status["hashAlg"]
    return CertConfirmation(status["certHash"].asOctets(), int(status["certReqId"]), accepted,
                            str(algorithm["algorithm"]) if algorithm.isValue else None,
                            int(info["status"]) if info.isValue else None,
                            info.isValue and info["failInfo"].isValue)


def _revocation(content: Any) -> RevocationRequest:
    if len(content) != 1:
        raise DecodeError("RFC 9483 §4.2: one certificate per revocation request")
    details = content[0]
    template = details["certDetails"]
    issuer = bytes(encoder.encode(template["issuer"][0])) if template["issuer"].isValue else None
    serial = int(template["serialNumber"]) if template["serialNumber"].isValue else None
    reasons = []
    extensions = details["crlEntryDetails"]
    for extension in extensions if extensions.isValue else ():
        if str(extension["extnID"]) == _REASON_CODE:
            code, _ = decoder.decode(extension["extnValue"].asOctets())
            reasons.append(int(code))
    subject = (bytes(encoder.encode(template["subject"][0])) if template["subject"].isValue
               else None)
    if subject is not None and subject[0] != SEQUENCE:  # [5] EXPLICIT Name: its content
        _, start, end = read_tlv(subject, 0)
        subject = subject[start:end]
    key = template["publicKey"]
    # [6] IMPLICIT SubjectPublicKeyInfo: the same DER under the SEQUENCE tag (X.690 §8.14)
    public_key = b"\x30" + bytes(encoder.encode(key))[1:] if key.isValue else None
    return RevocationRequest(issuer, serial, reasons[-1] if reasons else None, tuple(reasons),
                             subject, public_key)


_FAILURE_NAMES = {bit: name for name, bit in rfc9480.PKIFailureInfo.namedValues.items()}


def _failures(info: Any) -> tuple[str, ...]:
    bits = info["failInfo"]
    if not bits.isValue:
        return ()
    return tuple(_FAILURE_NAMES.get(i, str(i)) for i, bit in enumerate(bits) if bit)


def _cert_responses(content: Any) -> CertResponses:
    """Client side of RFC 9810 §5.3.4: certificates as `cryptography` objects."""
    responses = []
    for response in content["response"]:
        info = response["status"]
        certificate = None
        pair = response["certifiedKeyPair"]
        if pair.isValue:
            choice = pair["certOrEncCert"]
            if choice.getName() != "certificate":
                raise DecodeError("an encrypted certificate is not supported")
            certificate = _certificate(choice["certificate"])
        responses.append(CertResponse(int(response["certReqId"]), int(info["status"]),
                                      _failures(info), _free_text(info["statusString"]),
                                      certificate))
    pubs = content["caPubs"]
    ca_pubs = tuple(_certificate(c) for c in pubs) if pubs.isValue else ()
    return CertResponses(tuple(responses), ca_pubs)


def _certificate(value: Any) -> x509.Certificate:
    der = bytes(encoder.encode(value))
    if der[0] != SEQUENCE:  # an EXPLICIT tag around the certificate
        _, start, end = read_tlv(der, 0)
        der = der[start:end]
    return x509.load_der_x509_certificate(der)


def _free_text(text: Any) -> str:
    return "; ".join(str(t) for t in text) if text.isValue else ""
