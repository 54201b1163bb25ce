"""Event outbox: events are written in the transaction that caused them, fanned out to
webhook deliveries later (`delivered_at` marks an event dispatched)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from iotpki.core.events import Event, StoredEvent
from iotpki.store.group_commit import GroupCommit
from iotpki.store.prepared import Prepared
from iotpki.store.schema import events

_INSERT = Prepared(events.insert().inline(), ("type", "at", "payload"))
_MARK_DISPATCHED = Prepared(update(events).where(events.c.id == bindparam("event"))
                            .values(delivered_at=bindparam("at")))


class SQLEventOutbox:
    def __init__(self, conn: Connection, group: GroupCommit | None = None) -> None:
        self._conn = conn
        self._group = group  # in a group commit, events are written with its COMMIT

    def add(self, event: Event) -> None:
        self.add_many([event])

    def add_many(self, events: list[Event]) -> None:
        rows = [{"type": e.type, "at": e.at, "payload": e.payload_json} for e in events]
        if self._group is not None:
            self._group.append(lambda conn: _INSERT.execute_many(conn, rows))
        else:
            _INSERT.execute_many(self._conn, rows)

    def undispatched(self, limit: int) -> list[StoredEvent]:
        # SKIP LOCKED (PostgreSQL): another node's fan-out takes the next batch instead of
        # waiting; SQLite serializes writers anyway and ignores the clause.
        rows = self._conn.execute(
            select(events).where(events.c.delivered_at.is_(None)).order_by(events.c.id)
            .limit(limit).with_for_update(skip_locked=True)).all()
        return [_stored(r) for r in rows]

    def get(self, event_id: int) -> StoredEvent | None:
        row = self._conn.execute(select(events).where(events.c.id == event_id)).first()
        return _stored(row) if row is not None else None

    def mark_dispatched(self, event_ids: list[int], at: datetime) -> None:
        _MARK_DISPATCHED.execute_many(self._conn, [{"event": i} for i in event_ids], {"at": at})


def _stored(row: Row[Any]) -> StoredEvent:
    return StoredEvent(int(row.id), row.type, row.at, json.loads(row.payload))
