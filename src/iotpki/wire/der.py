"""Minimal DER (X.690 §8, §10) for the few structures iotpki encodes itself for speed.

Only definite lengths and the universal types we write (INTEGER, ENUMERATED, UTCTime,
GeneralizedTime, SEQUENCE, OCTET STRING, BIT STRING, OBJECT IDENTIFIER).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from iotpki.wire.errors import DecodeError

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
ENUMERATED = 0x0A
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(value)) + value


def object_identifier(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER (X.690 §8.19)."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.insert(0, 0x80 | (part & 0x7F))
            part >>= 7
        body.extend(chunk)
    return tlv(0x06, bytes(body))


def integer_from_hex(serial_hex: str) -> bytes:
    """A positive INTEGER from lowercase hex without leading zeros (X.690 §8.3)."""
    body = bytes.fromhex(serial_hex if len(serial_hex) % 2 == 0 else "0" + serial_hex)
    if body[0] & 0x80:
        body = b"\x00" + body
    if len(body) < 0x80:  # serials (≤ 20 octets, RFC 5280 §4.1.2.2): the short form
        return bytes((INTEGER, len(body))) + body
    return tlv(INTEGER, body)


def generalized_time(moment: datetime) -> bytes:
    """GeneralizedTime in UTC without fractions (RFC 5280 §4.1.2.5.2)."""
    return tlv(GENERALIZED_TIME, moment.strftime("%Y%m%d%H%M%SZ").encode())


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at `offset`."""
    if offset + 2 > len(data):
        raise DecodeError("truncated DER element")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise DecodeError("unsupported DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    else:
        length = first
    if start + length > len(data):
        raise DecodeError("truncated DER element")
    return tag, start, start + length


def children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(tag, element start, element end) of each element inside a constructed value; the
    elements must fill it exactly (X.690 §8.1.1.3: a definite length counts the contents, so
    an element running past its parent's end is malformed, not read on into the next)."""
    offset = start
    while offset < end:
        tag, _, value_end = read_tlv(data, offset)
        if value_end > end:
            raise DecodeError("a DER element runs past the end of the element holding it")
        yield tag, offset, value_end
        offset = value_end
