"""The DNS codec dns-01 relies on (RFC 1035 §4): answers parsed, hostile ones refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpki.wire.dns import (
    TYPE_CNAME,
    TYPE_TXT,
    decode_answer,
    encode_query,
    txt_values,
)
from iotpki.wire.errors import DecodeError


def answer(query_id: int, records: list[tuple[str, int, bytes]], flags: int = 0x8180) -> bytes:
    question = encode_query("_acme-challenge.a.example", TYPE_TXT, query_id)[12:]
    body = b""
    for owner, rtype, rdata in records:
        name = b"".join(bytes([len(p)]) + p.encode() for p in owner.split(".")) + b"\x00"
        body += name + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return struct.pack("!HHHHHH", query_id, flags, 1, len(records), 0, 0) + question + body


def txt(*parts: bytes) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in parts)


def test_txt_values_concatenate_strings_and_follow_cnames() -> None:
    cname = b"".join(bytes([len(p)]) + p.encode() for p in ["x", "b", "example"]) + b"\x00"
    message = answer(7, [("_acme-challenge.a.example", TYPE_CNAME, cname),
                         ("x.b.example", TYPE_TXT, txt(b"abc", b"def")),
                         ("other.example", TYPE_TXT, txt(b"no"))])
    parsed = decode_answer(message, 7)
    assert txt_values(parsed, "_acme-challenge.a.example") == ["abcdef"]


def test_answer_to_another_query_is_refused() -> None:
    with pytest.raises(DecodeError):
        decode_answer(answer(7, []), 8)


def test_pointer_loop_is_refused() -> None:
    message = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x10\x00\x01"
    with pytest.raises(DecodeError):
        decode_answer(message, 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    message = struct.pack("!H", 5) + b"\x81\x80" + data
    try:
        parsed = decode_answer(message, 5)
        txt_values(parsed, "a.example")
    except DecodeError:
        pass
