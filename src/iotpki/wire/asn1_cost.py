"""pyasn1's error for a tag it did not expect formats the *schema* it expected
(`'%s not in asn1Spec: %r'` in its BER decoder), and the repr of a schema is the repr of
every component type under it: for a CMP body, about 140 ms of CPU for a 237-octet request
(found by bench/fuzz_cmp.py). The text is never shown: decoders here turn every
`PyAsn1Error` into a short `DecodeError`. So a schema object (a type without a value)
represents itself by its class name alone; values keep pyasn1's own representation.

Applied once, by importing this module (the CMP codec does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyasn1.type import base

__all__ = ["install_cheap_schema_repr"]


def _cheap(original: Callable[[Any], str]) -> Callable[[Any], str]:
    def representation(self: Any) -> str:
        if not self.isValue:
            return f"{type(self).__name__} schema"
        return original(self)
    representation.iotpki_cheap = True  # type: ignore[attr-defined]
    return representation


def install_cheap_schema_repr() -> None:
    for cls in (base.ConstructedAsn1Type, base.SimpleAsn1Type):
        if not getattr(cls.__repr__, "iotpki_cheap", False):
            cls.__repr__ = _cheap(cls.__repr__)


install_cheap_schema_repr()
