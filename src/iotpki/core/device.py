"""Devices built from components: the record lists the component identities it contains,
and its device certificate can commit to them (`iotpki.wire.binding`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Device:
    id: str
    organization: str
    name: str
    components: tuple[str, ...]  # SHA-256 fingerprints of the component certificates
    component_digest: bytes
    created_at: datetime
