"""Opaque keyset cursors in the console's links: a page's last position, base64url-encoded
(`core.lifecycle.device_inventory.DevicePosition`, an audit sequence number, ...)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from iotpki.core.errors import ConfigurationError
from iotpki.core.lifecycle.device_inventory import DevicePosition

MAX_CURSOR = 200


def encode_keyset(created_at: datetime, key: str) -> str:
    """A (creation time, id) position: the keyset of devices, webhook deliveries, ..."""
    raw = f"{created_at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keyset(cursor: str) -> tuple[datetime, str]:
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, key = raw.partition("|")
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None or not key:
            raise ValueError
        return created_at, key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConfigurationError("invalid page cursor: follow the page's links") from None


def encode_position(position: DevicePosition) -> str:
    return encode_keyset(position.created_at, position.device_id)


def decode_position(cursor: str) -> DevicePosition:
    return DevicePosition(*decode_keyset(cursor))
