"""Domain events, written to a persisted outbox in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str  # e.g. "certificate.issued", "certificate.revoked", "enrollment.refused"
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent:
    """An event as the outbox keeps it: its row id orders events and names them in
    webhook deliveries."""

    id: int
    type: str
    at: datetime
    payload: Mapping[str, Any]
