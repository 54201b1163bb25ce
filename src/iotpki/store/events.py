"""Event outbox: events are written in the transaction that caused them, delivered later."""

from __future__ import annotations

import json

from sqlalchemy import Connection

from iotpki.core.events import Event
from iotpki.store.prepared import Prepared
from iotpki.store.schema import events

_INSERT = Prepared(events.insert().inline(), ("type", "at", "payload"))


class SQLEventOutbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, event: Event) -> None:
        self.add_many([event])

    def add_many(self, events: list[Event]) -> None:
        _INSERT.execute_many(self._conn, [{
            "type": e.type, "at": e.at,
            "payload": json.dumps(e.payload, sort_keys=True, default=str),
        } for e in events])
