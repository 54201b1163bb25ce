"""Domain events, written to a persisted outbox in the same transaction as the change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from iotpki.core.audit.bounds import bounded_value

_PAYLOAD = json.JSONEncoder(sort_keys=True, default=str)


@dataclass(frozen=True)
class Event:
    type: str  # e.g. "certificate.issued", "certificate.revoked", "enrollment.refused"
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    # The payload as the outbox stores it, encoded where the event is made: a writer does
    # this before it takes the write lock, not under it (issue 21).
    payload_json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Payloads carry client-supplied text (requesters, refusal details): bounded, as
        # in the audit log, before they reach the outbox and every webhook receiver.
        payload = bounded_value(dict(self.payload))
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "payload_json", _PAYLOAD.encode(payload))


@dataclass(frozen=True)
class StoredEvent:
    """An event as the outbox keeps it: its row id orders events and names them in
    webhook deliveries."""

    id: int
    type: str
    at: datetime
    payload: Mapping[str, Any]


class EventOutbox(Protocol):
    def add(self, event: Event) -> None: ...

    def add_many(self, events: list[Event]) -> None: ...

    def undispatched(self, limit: int) -> list[StoredEvent]:
        """The oldest events not yet fanned out to webhook deliveries, locked until the
        transaction ends (other nodes skip them)."""
        ...

    def get(self, event_id: int) -> StoredEvent | None: ...

    def mark_dispatched(self, event_ids: list[int], at: datetime) -> None: ...
