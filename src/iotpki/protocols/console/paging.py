"""Opaque keyset cursors in the console's links: a page's last position, base64url-encoded
(`core.lifecycle.device_inventory.DevicePosition`, an audit sequence number, ...)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from iotpki.core.errors import ConfigurationError
from iotpki.core.lifecycle.device_inventory import DevicePosition

MAX_CURSOR = 200


def encode_position(position: DevicePosition) -> str:
    raw = f"{position.created_at.isoformat()}|{position.device_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str) -> DevicePosition:
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, device_id = raw.partition("|")
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None or not device_id:
            raise ValueError
        return DevicePosition(created_at, device_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConfigurationError("invalid page cursor: follow the page's links") from None
