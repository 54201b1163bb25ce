"""The PKIHeader of a request read with the DER walker (RFC 9810 §5.1.1, profiled by RFC
9483 §3.1), for the common shape: pyasn1 takes about half of a CMP request's decoding time
for the header alone (issue 21).

Only a header this reader knows to decode exactly as pyasn1 would is read here: the
sender and recipient directory names of single-valued RDNs with minimal lengths (their DER
is echoed as is), no freeText, the optional fields in order, primitive OCTET STRINGs,
well-formed OBJECT IDENTIFIERs. Anything else is `NotRead`, and the caller decodes the
header with pyasn1 (`wire.cmp.messages`), which accepts or refuses it as before.
tests/cmp/test_wire_cmp_header_der.py compares both readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyasn1.error import PyAsn1Error

from iotpki.wire.der import GENERALIZED_TIME, INTEGER, OCTET_STRING, SEQUENCE, children, read_tlv
from iotpki.wire.errors import DecodeError

OBJECT_IDENTIFIER, SET, DIRECTORY_NAME = 0x06, 0x31, 0xA4
# [n] EXPLICIT optional fields of PKIHeader (RFC 9810 §5.1.1) after pvno, sender, recipient
_MESSAGE_TIME, _PROTECTION_ALG, _SENDER_KID, _RECIP_KID = 0xA0, 0xA1, 0xA2, 0xA3
_TRANSACTION_ID, _SENDER_NONCE, _RECIP_NONCE, _GENERAL_INFO = 0xA4, 0xA5, 0xA6, 0xA8
_MAX_SUBIDENTIFIER_OCTETS = 21  # pyasn1 refuses more than 20 continuation octets
_OCTET_FIELDS = {_SENDER_KID: "sender_kid", _RECIP_KID: "recip_kid",
                 _TRANSACTION_ID: "transaction_id", _SENDER_NONCE: "sender_nonce",
                 _RECIP_NONCE: "recip_nonce"}


class NotReadError(Exception):
    """Not a header of the shape read here: pyasn1 decides (never a refusal by itself)."""


@dataclass(frozen=True)
class HeaderFields:
    """What `wire.cmp.messages.Header` holds, implicitConfirm aside (read from general_info)."""

    pvno: int
    sender_der: bytes
    message_time: datetime | None = None
    protection_algorithm: str | None = None
    protection_parameters: bytes | None = None
    sender_kid: bytes | None = None
    transaction_id: bytes | None = None
    sender_nonce: bytes | None = None
    recip_nonce: bytes | None = None
    general_info: tuple[tuple[str, bytes | None], ...] = ()


def read_header_fields(der: bytes) -> HeaderFields:
    """The fields of a PKIHeader's DER, or `NotReadError`."""
    try:
        return _read(der)
    except (DecodeError, PyAsn1Error, ValueError, IndexError) as exc:
        raise NotReadError(str(exc)) from exc


def _read(der: bytes) -> HeaderFields:
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise NotReadError("not one SEQUENCE")
    elements = list(children(der, start, end))
    if len(elements) < 3 or elements[0][0] != INTEGER:
        raise NotReadError("pvno, sender, recipient")
    sender = der[elements[1][1]:elements[1][2]]
    _directory_name(sender)
    _directory_name(der[elements[2][1]:elements[2][2]])
    fields: dict[str, Any] = {}
    previous = 0
    for tag, element_start, element_end in elements[3:]:
        if tag <= previous:
            raise NotReadError("optional fields out of order")
        previous = tag
        inner = _explicit(der, element_start, element_end)
        if tag in _OCTET_FIELDS:
            fields[_OCTET_FIELDS[tag]] = _octets(inner)
        elif tag == _MESSAGE_TIME:
            fields["message_time"] = _time(inner)
        elif tag == _PROTECTION_ALG:
            fields["protection_algorithm"], fields["protection_parameters"] = _algorithm(inner)
        elif tag == _GENERAL_INFO:
            fields["general_info"] = _general_info(inner)
        else:  # freeText [7] and anything unknown
            raise NotReadError(f"field {tag:#x}")
    fields.pop("recip_kid", None)  # validated, not kept (as with pyasn1)
    return HeaderFields(_integer(der, elements[0]), sender, **fields)


def _explicit(der: bytes, start: int, end: int) -> bytes:
    """The one element inside an EXPLICIT tag."""
    if not der[start] & 0x20:
        raise NotReadError("a primitive explicit tag")
    _, value_start, value_end = read_tlv(der, start)
    inner = der[value_start:value_end]
    if not inner or read_tlv(inner, 0)[2] != len(inner):
        raise NotReadError("an explicit tag must hold exactly one element")
    return inner


def _integer(der: bytes, element: tuple[int, int, int]) -> int:
    _, start, end = read_tlv(der, element[1])
    if start == end:
        raise NotReadError("empty INTEGER")
    return int.from_bytes(der[start:end], "big", signed=True)


def _octets(element: bytes) -> bytes:
    tag, start, end = read_tlv(element, 0)
    if tag != OCTET_STRING:
        raise NotReadError("not a primitive OCTET STRING")
    return element[start:end]


def _time(element: bytes) -> datetime:
    """GeneralizedTime of the form RFC 5280 §4.1.2.5.2 prescribes, YYYYMMDDHHMMSSZ, each
    field in range: what pyasn1's `asDateTime` (strptime) parses the same way; any other
    form is pyasn1's."""
    tag, start, end = read_tlv(element, 0)
    text = element[start:end]
    if tag != GENERALIZED_TIME or len(text) != 15 or text[14] != 0x5A or not text[:14].isdigit():
        raise NotReadError("not a GeneralizedTime of the RFC 5280 form")
    year, month, day = int(text[0:4]), int(text[4:6]), int(text[6:8])
    hour, minute, second = int(text[8:10]), int(text[10:12]), int(text[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59
            and second <= 59):
        raise NotReadError("a field out of range")
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)  # ValueError: pyasn1's


def _algorithm(element: bytes) -> tuple[str, bytes | None]:
    """AlgorithmIdentifier (RFC 5280 §4.1.1.2): (OID, DER of the parameters or None)."""
    tag, start, end = read_tlv(element, 0)
    parts = list(children(element, start, end)) if tag == SEQUENCE else []
    if not 1 <= len(parts) <= 2:
        raise NotReadError("not an AlgorithmIdentifier")
    oid = _oid(element, parts[0])
    if len(parts) == 1:
        return oid, None
    value = element[parts[1][1]:parts[1][2]]
    _any(value)
    return oid, value


def _general_info(element: bytes) -> tuple[tuple[str, bytes | None], ...]:
    """SEQUENCE SIZE (1..MAX) OF InfoTypeAndValue (RFC 9810 §5.1.1, §5.3.19)."""
    tag, start, end = read_tlv(element, 0)
    if tag != SEQUENCE or start == end:
        raise NotReadError("generalInfo")
    infos = []
    for info_tag, info_start, info_end in children(element, start, end):
        if info_tag != SEQUENCE:
            raise NotReadError("not an InfoTypeAndValue")
        info = element[info_start:info_end]
        infos.append(_algorithm(info))  # the same shape: an OID and an optional ANY
    return tuple(infos)


def _directory_name(element: bytes) -> None:
    """[4] EXPLICIT Name of single-valued RDNs, lengths minimal: its DER is what pyasn1
    re-encodes (a multi-valued RDN would be sorted, X.690 §11.6)."""
    _minimal_lengths(element)
    if element[0] != DIRECTORY_NAME:
        raise NotReadError("not a directoryName")
    name = _explicit(element, 0, len(element))
    tag, start, end = read_tlv(name, 0)
    if tag != SEQUENCE:
        raise NotReadError("not an RDNSequence")
    for rdn_tag, rdn_start, _ in children(name, start, end):
        _, set_start, set_end = read_tlv(name, rdn_start)
        attributes = list(children(name, set_start, set_end))
        if rdn_tag != SET or len(attributes) != 1 or attributes[0][0] != SEQUENCE:
            raise NotReadError("not a single-valued RDN")
        _, pair_start, pair_end = read_tlv(name, attributes[0][1])
        pair = list(children(name, pair_start, pair_end))
        if len(pair) != 2:
            raise NotReadError("not an AttributeTypeAndValue")
        _oid(name, pair[0])
        _any(name[pair[1][1]:pair[1][2]])


def _any(der: bytes) -> None:
    """An ANY value pyasn1 takes as it is: no end-of-contents or multi-byte tag in it
    (checked throughout, which is stricter than pyasn1 and so only ever leaves more to it)."""
    offset = 0
    while offset < len(der):
        tag, start, end = read_tlv(der, offset)
        if tag in (0x00, 0x20) or tag & 0x1F == 0x1F:
            raise NotReadError(f"tag {tag:#x} in an ANY value")
        offset = start if tag & 0x20 else end


def _oid(der: bytes, element: tuple[int, int, int]) -> str:
    """A primitive OBJECT IDENTIFIER in dotted form, as pyasn1 prints it (X.690 §8.19)."""
    tag, start, end = read_tlv(der, element[1])
    if tag != OBJECT_IDENTIFIER or start == end or der[end - 1] & 0x80:
        raise NotReadError("not an OBJECT IDENTIFIER")
    arcs, value, octets = [], 0, 0
    for octet in der[start:end]:
        if octets == 0 and octet == 0x80:
            raise NotReadError("a non-minimal subidentifier")
        value, octets = (value << 7) | (octet & 0x7F), octets + 1
        if octets > _MAX_SUBIDENTIFIER_OCTETS:
            raise NotReadError("a subidentifier too long")
        if not octet & 0x80:
            arcs.append(value)
            value, octets = 0, 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _minimal_lengths(der: bytes) -> None:
    """Every length in `der` minimally encoded (X.690 §10.1), as pyasn1 would re-encode it."""
    offset = 0
    while offset < len(der):
        tag, start, end = read_tlv(der, offset)
        count = start - offset - 1
        length = end - start
        minimal = 1 if length < 0x80 else 1 + (length.bit_length() + 7) // 8
        if count != minimal:
            raise NotReadError("a non-minimal length")
        offset = start if tag & 0x20 else end
