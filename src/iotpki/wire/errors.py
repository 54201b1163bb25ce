"""The root of every iotpki exception."""

from __future__ import annotations


class PKIError(Exception):
    """Root of all iotpki errors; `str()` is a short explanation fit for a client."""


class DecodeError(PKIError):
    """Bytes that do not decode as the structure the caller expected."""
