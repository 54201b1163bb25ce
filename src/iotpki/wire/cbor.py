"""The part of CBOR (RFC 8949) attestation objects use: unsigned and negative integers, byte
and text strings, arrays, maps, simple true/false/null; definite lengths only. Hostile
input: anything else, or anything malformed, is a `DecodeError`.
"""

from __future__ import annotations

import struct
from typing import Any

from iotpki.wire.errors import DecodeError

MAX_DEPTH = 16
MAX_ITEMS = 10_000


def encode(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, list | tuple):
        return _head(4, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def _head(major: int, argument: int) -> bytes:
    if argument < 24:
        return bytes([major << 5 | argument])
    for extra, fmt in ((24, "!B"), (25, "!H"), (26, "!I"), (27, "!Q")):
        if argument < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, argument)
    raise ValueError("integer too large for CBOR")


def decode(data: bytes) -> Any:
    """One CBOR item that spans all of `data`."""
    value, offset = _item(data, 0, 0, [0])
    if offset != len(data):
        raise DecodeError("trailing bytes after the CBOR item")
    return value


def _item(data: bytes, offset: int, depth: int, count: list[int]) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise DecodeError("CBOR nested too deeply")
    count[0] += 1
    if count[0] > MAX_ITEMS:
        raise DecodeError("too many CBOR items")
    if offset >= len(data):
        raise DecodeError("CBOR item runs past the end")
    initial = data[offset]
    major, info = initial >> 5, initial & 0x1F
    offset += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info not in simple:
            raise DecodeError("unsupported CBOR simple value or float")
        return simple[info], offset
    argument, offset = _argument(data, offset, info)
    if major == 0:
        return argument, offset
    if major == 1:
        return -1 - argument, offset
    if major in (2, 3):
        end = offset + argument
        if end > len(data):
            raise DecodeError("CBOR string runs past the end")
        raw = data[offset:end]
        if major == 2:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise DecodeError("CBOR text is not UTF-8") from exc
    if major == 4:
        items = []
        for _ in range(argument):
            item, offset = _item(data, offset, depth + 1, count)
            items.append(item)
        return items, offset
    if major == 5:
        mapping: dict[Any, Any] = {}
        for _ in range(argument):
            key, offset = _item(data, offset, depth + 1, count)
            if isinstance(key, list | dict):
                raise DecodeError("unsupported CBOR map key")
            mapping[key], offset = _item(data, offset, depth + 1, count)
        return mapping, offset
    raise DecodeError("CBOR tags are not supported")


def _argument(data: bytes, offset: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, offset
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    size = sizes.get(info)
    if size is None:
        raise DecodeError("indefinite or reserved CBOR length")
    if offset + size > len(data):
        raise DecodeError("CBOR length runs past the end")
    return int.from_bytes(data[offset:offset + size], "big"), offset + size
