"""The few DNS messages ACME validation needs (RFC 1035 §4): a query for one name and type,
and the TXT (RFC 1035 §3.3.14) or A/AAAA records of the answer, following CNAMEs inside the
answer section. Hostile input: every malformed answer is a `DecodeError`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from iotpki.wire.errors import DecodeError

TYPE_A, TYPE_CNAME, TYPE_TXT, TYPE_AAAA = 1, 5, 16, 28
CLASS_IN = 1
RCODE_NXDOMAIN = 3
MAX_POINTERS = 64


@dataclass(frozen=True)
class Answer:
    rcode: int
    truncated: bool
    records: tuple[tuple[str, int, bytes], ...]  # (owner name, type, rdata)


def encode_query(name: str, qtype: int, query_id: int) -> bytes:
    """A recursive query (RD set) for `name`, class IN."""
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    return header + _encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def decode_answer(message: bytes, query_id: int) -> Answer:
    """The header's rcode and TC bit and every answer record; `DecodeError` on anything
    malformed or on an answer to another query."""
    if len(message) < 12:
        raise DecodeError("DNS message shorter than its header")
    ident, flags, qdcount, ancount = struct.unpack("!HHHH", message[:8])
    if ident != query_id or not flags & 0x8000:
        raise DecodeError("not the answer to our DNS query")
    offset = 12
    for _ in range(qdcount):
        _, offset = _read_name(message, offset)
        offset += 4
    records = []
    for _ in range(ancount):
        owner, offset = _read_name(message, offset)
        if offset + 10 > len(message):
            raise DecodeError("truncated DNS record")
        rtype, _, _, length = struct.unpack("!HHIH", message[offset:offset + 10])
        offset += 10
        if offset + length > len(message):
            raise DecodeError("truncated DNS record data")
        rdata = message[offset:offset + length]
        if rtype == TYPE_CNAME:
            target, _ = _read_name(message, offset)
            rdata = target.encode("ascii")
        records.append((owner, rtype, rdata))
        offset += length
    return Answer(flags & 0x000F, bool(flags & 0x0200), tuple(records))


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    for _ in range(MAX_POINTERS):
        if offset >= len(message):
            raise DecodeError("DNS name runs past the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise DecodeError("truncated DNS name pointer")
            end = offset + 2 if end is None else end
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            continue
        if length & 0xC0:
            raise DecodeError("unknown DNS label type")
        if length == 0:
            name = ".".join(labels).lower()
            return name, (offset + 1 if end is None else end)
        label = message[offset + 1:offset + 1 + length]
        if len(label) != length:
            raise DecodeError("truncated DNS label")
        labels.append(label.decode("ascii", "replace"))
        offset += 1 + length
    raise DecodeError("DNS name pointer loop")


def _chain(answer: Answer, name: str) -> set[str]:
    """`name` and every name a CNAME in the answer leads to from it."""
    names = {name.lower().rstrip(".")}
    for _ in range(8):
        more = {r[2].decode("ascii") for r in answer.records
                if r[1] == TYPE_CNAME and r[0] in names}
        if more <= names:
            break
        names |= more
    return names


def txt_values(answer: Answer, name: str) -> list[str]:
    """RFC 1035 §3.3.14: each TXT record's character-strings, concatenated."""
    names = _chain(answer, name)
    values = []
    for owner, rtype, rdata in answer.records:
        if rtype != TYPE_TXT or owner not in names:
            continue
        parts, offset = [], 0
        while offset < len(rdata):
            length = rdata[offset]
            parts.append(rdata[offset + 1:offset + 1 + length])
            offset += 1 + length
        if offset != len(rdata):
            raise DecodeError("malformed TXT record")
        values.append(b"".join(parts).decode("utf-8", "replace"))
    return values


def addresses(answer: Answer, name: str) -> list[str]:
    names = _chain(answer, name)
    found = []
    for owner, rtype, rdata in answer.records:
        if owner in names and (rtype, len(rdata)) in ((TYPE_A, 4), (TYPE_AAAA, 16)):
            found.append(str(ipaddress.ip_address(rdata)))
    return found
