"""A cheap structural check of DER (X.690 §8.1, definite lengths) before pyasn1 sees the
bytes: pyasn1 spends up to a third of a second formatting its error for garbage, so
garbage must not reach it (a request must not cost that much CPU)."""

from __future__ import annotations

from iotpki.wire.der import children, read_tlv
from iotpki.wire.errors import DecodeError

_MAX_DEPTH = 32


def check_tlv_tree(der: bytes) -> None:
    """Raise `DecodeError` unless `der` is one element whose TLV tree parses exactly."""
    tag, start, end = read_tlv(der, 0)
    if end != len(der):
        raise DecodeError("trailing bytes after the DER element")
    if tag & 0x20:
        _walk(der, start, end, depth=0)


def _walk(der: bytes, start: int, end: int, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise DecodeError("DER nested too deeply")
    for tag, element_start, element_end in children(der, start, end):
        if tag & 0x1F == 0x1F:
            raise DecodeError("multi-byte DER tags are not used in CMP")
        if tag & 0x20:
            _, value_start, _ = read_tlv(der, element_start)
            _walk(der, value_start, element_end, depth + 1)
