"""Event outbox: events are written in the transaction that caused them, delivered later."""

from __future__ import annotations

import json

from sqlalchemy import Connection

from iotpki.core.events import Event
from iotpki.store.bulk import insert_many
from iotpki.store.schema import events

_INSERT = events.insert()
_COLUMNS = [events.c.type, events.c.at, events.c.payload]
_DRIVER_LEVEL = 1000
_JSON = json.JSONEncoder(sort_keys=True, default=str)  # built once: bulk revocations


class SQLEventOutbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, event: Event) -> None:
        self.add_many([event])

    def add_many(self, events: list[Event]) -> None:
        rows = [(e.type, e.at, _JSON.encode(e.payload))
                for e in events]
        if len(rows) < _DRIVER_LEVEL:
            self._conn.execute(_INSERT, [dict(zip(("type", "at", "payload"), r, strict=True))
                                         for r in rows])
        else:  # a bulk revocation: skip SQLAlchemy's per-row parameter processing
            insert_many(self._conn, _COLUMNS, rows)
