"""PKIResponse (RFC 5272 §3.3) with CMCStatusInfoV2 (§6.1.1), signed (§3.3: a SignedData
whose eContentType is id-cct-PKIResponse).

    PKIResponse ::= SEQUENCE { controlSequence SEQUENCE OF TaggedAttribute,
                               cmsSequence SEQUENCE OF TaggedContentInfo,
                               otherMsgSequence SEQUENCE OF OtherMsg }
    CMCStatusInfoV2 ::= SEQUENCE { cMCStatus CMCStatus, bodyList SEQUENCE OF
        BodyPartReference, statusString UTF8String OPTIONAL, otherInfo OtherStatusInfo
        OPTIONAL }  -- failInfo CMCFailInfo | pendInfo PendInfo | extendedFailInfo

The issued certificates travel in the SignedData's certificates (§3.3). The response
echoes transactionId and returns the request's senderNonce as recipientNonce (§6.6).
`decode_pki_response` is the client side (tests and tools).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc6402

from iotpki.wire.cmc.pki_data import (
    ID_CCT_PKI_RESPONSE,
    RECIPIENT_NONCE,
    SENDER_NONCE,
    STATUS_INFO_V2,
    TRANSACTION_ID,
    control,
    integer,
    octet_string,
)
from iotpki.wire.cms_envelope import ID_SIGNED_DATA, content_info
from iotpki.wire.decoding import MALFORMED, short_reason
from iotpki.wire.der import SEQUENCE, generalized_time, tlv
from iotpki.wire.errors import DecodeError
from iotpki.wire.key_package import encode_signed_data

STATUS_TEXT_LIMIT = 512


class CMCStatus(IntEnum):
    SUCCESS = 0
    FAILED = 2
    PENDING = 3
    NO_SUPPORT = 4
    CONFIRM_REQUIRED = 5
    POP_REQUIRED = 6
    PARTIAL = 7


# CMCFailInfo (RFC 5272 §6.1.4)
FAIL_INFO: dict[str, int] = {
    "badAlg": 0, "badMessageCheck": 1, "badRequest": 2, "badTime": 3, "badCertId": 4,
    "unsupportedExt": 5, "mustArchiveKeys": 6, "badIdentity": 7, "popRequired": 8,
    "popFailed": 9, "noKeyReuse": 10, "internalCAError": 11, "tryLater": 12,
    "authDataFail": 13}
_FAIL_NAME = {number: name for name, number in FAIL_INFO.items()}


@dataclass(frozen=True)
class StatusInfo:
    status: CMCStatus
    body_parts: tuple[int, ...]  # the bodyPartIDs it answers; (0,) the whole PKIData
    text: str | None = None
    fail_info: str | None = None  # a CMCFailInfo name, with FAILED
    pend_token: bytes | None = None  # with PENDING (§6.1.1 PendInfo)
    pend_time: datetime | None = None


@dataclass(frozen=True)
class PKIResponse:
    statuses: tuple[StatusInfo, ...]
    transaction_id: int | None = None
    sender_nonce: bytes | None = None
    recipient_nonce: bytes | None = None


def encode_status(info: StatusInfo) -> bytes:
    body = integer(int(info.status)) + tlv(SEQUENCE, b"".join(integer(i)
                                                             for i in info.body_parts))
    if info.text:
        body += tlv(0x0C, info.text[:STATUS_TEXT_LIMIT].encode())
    if info.fail_info is not None:
        body += integer(FAIL_INFO[info.fail_info])
    elif info.pend_token is not None and info.pend_time is not None:
        body += tlv(SEQUENCE, octet_string(info.pend_token) + generalized_time(info.pend_time))
    return tlv(SEQUENCE, body)


def encode_pki_response(response: PKIResponse) -> bytes:
    """DER of the PKIResponse; its controls are numbered 1, 2, ... (§3.3: unique IDs)."""
    values = [(STATUS_INFO_V2, encode_status(s)) for s in response.statuses]
    if response.transaction_id is not None:
        values.append((TRANSACTION_ID, integer(response.transaction_id)))
    if response.sender_nonce is not None:
        values.append((SENDER_NONCE, octet_string(response.sender_nonce)))
    if response.recipient_nonce is not None:
        values.append((RECIPIENT_NONCE, octet_string(response.recipient_nonce)))
    controls = b"".join(control(n, kind, value) for n, (kind, value) in enumerate(values, 1))
    return tlv(SEQUENCE, tlv(SEQUENCE, controls) + tlv(SEQUENCE, b"") + tlv(SEQUENCE, b""))


def sign_pki_response(response: PKIResponse, key: Any,
                      certificates: Sequence[x509.Certificate]) -> bytes:
    """ContentInfo(SignedData(PKIResponse)), signed by `key`; `certificates[0]` is the
    signer's certificate, the others (chain, issued certificates) follow it."""
    signed = encode_signed_data(ID_CCT_PKI_RESPONSE, encode_pki_response(response), key,
                                certificates)
    return content_info(ID_SIGNED_DATA, signed)


def decode_pki_response(der: bytes) -> PKIResponse:
    """The client side: a PKIResponse's statuses, transactionId and nonces."""
    try:
        value, rest = decoder.decode(der, asn1Spec=rfc6402.PKIResponse())
        if rest:
            raise DecodeError("trailing bytes after the PKIResponse")
        statuses, found = [], {}
        for attribute in value["controlSequence"]:
            kind, raw = str(attribute["attrType"]), bytes(attribute["attrValues"][0])
            if kind == STATUS_INFO_V2:
                statuses.append(_status(raw))
            else:
                found[kind] = raw
        return PKIResponse(
            tuple(statuses),
            int(decoder.decode(found[TRANSACTION_ID], asn1Spec=univ.Integer())[0])
            if TRANSACTION_ID in found else None,
            _octets(found.get(SENDER_NONCE)), _octets(found.get(RECIPIENT_NONCE)))
    except DecodeError:
        raise
    except MALFORMED as exc:
        raise DecodeError(f"malformed PKIResponse: {short_reason(exc)}") from exc


def _octets(raw: bytes | None) -> bytes | None:
    return None if raw is None else bytes(decoder.decode(raw, asn1Spec=univ.OctetString())[0])


def _status(raw: bytes) -> StatusInfo:
    info, rest = decoder.decode(raw, asn1Spec=rfc6402.CMCStatusInfoV2())
    if rest:
        raise DecodeError("trailing bytes after CMCStatusInfoV2")
    parts = tuple(int(r["bodyPartID"]) for r in info["bodyList"])
    text = str(info["statusString"]) if info["statusString"].isValue else None
    other = info["otherInfo"]
    fail = token = moment = None
    if other.isValue and other.getName() == "failInfo":
        fail = _FAIL_NAME.get(int(other["failInfo"]), str(int(other["failInfo"])))
    elif other.isValue and other.getName() == "pendInfo":
        token = bytes(other["pendInfo"]["pendToken"])
        moment = other["pendInfo"]["pendTime"].asDateTime.replace(tzinfo=UTC)
    return StatusInfo(CMCStatus(int(info["cMCStatus"])), parts, text, fail, token, moment)
