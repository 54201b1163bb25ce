"""Certificate serial numbers (RFC 5280 §4.1.2.2; CA/B Forum BR §7.1: ≥ 64 bits of CSPRNG output)."""

from __future__ import annotations

import secrets

SERIAL_BITS = 127  # positive, at most 16 octets in DER, far above the 64-bit floor


def new_serial() -> int:
    """A fresh positive serial with 127 random bits; never zero."""
    return secrets.randbits(SERIAL_BITS) or 1


def serial_hex(serial: int) -> str:
    """The stored, indexed form of a serial: lowercase hex, no leading zeros."""
    return format(serial, "x")
