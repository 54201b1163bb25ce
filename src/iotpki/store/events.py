"""Event outbox: events are written in the transaction that caused them, delivered later."""

from __future__ import annotations

import json

from sqlalchemy import Connection

from iotpki.core.events import Event
from iotpki.store.schema import events

_INSERT = events.insert()


class SQLEventOutbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, event: Event) -> None:
        self._conn.execute(_INSERT, {
            "type": event.type, "at": event.at,
            "payload": json.dumps(event.payload, sort_keys=True, default=str),
        })
