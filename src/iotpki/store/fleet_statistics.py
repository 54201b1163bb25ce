"""Counts for the fleet overview (`core.lifecycle.fleet_overview`), each answered from an
index (migration 0018): certificates by authority, status, notAfter and profile, every
count and expiry slice in one pass (`ix_certificates_fleet`, a covering index: the table is
not read), by authority and issue
time (`ix_certificates_issued`), and events by type and time (`ix_events_type_at`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, select

from iotpki.core.events import StoredEvent
from iotpki.core.lifecycle.fleet_overview import EXPIRED, Tally
from iotpki.store.ids import IdCache
from iotpki.store.schema import authorities, certificates, events


class SQLFleetStatistics:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _authority_ids(self, labels: Sequence[str]) -> list[int]:
        return [self._ids.id_of(self._conn, authorities, label) for label in labels]

    def tally(self, labels: Sequence[str], now: datetime,
              edges: Sequence[datetime]) -> list[Tally]:
        c = certificates.c
        status = case((and_(c.status == "good", c.not_after < now), EXPIRED), else_=c.status)
        bucket = case(*((c.not_after < edge, n) for n, edge in enumerate(edges)),
                      else_=len(edges))
        found: list[Tally] = []
        for authority_id in self._authority_ids(labels):  # one index range per authority
            rows = self._conn.execute(
                select(c.profile, status, bucket, func.count()).where(
                    c.authority_id == authority_id).group_by(c.profile, status, bucket))
            found += [Tally(profile, state, int(n), int(count))
                      for profile, state, n, count in rows]
        return found

    def issued_since(self, labels: Sequence[str], since: datetime) -> int:
        c = certificates.c
        return sum(int(self._conn.execute(select(func.count()).where(
            c.authority_id == authority_id, c.issued_at >= since)).scalar_one())
            for authority_id in self._authority_ids(labels))

    def recent_events(self, types: Sequence[str], since: datetime,
                      limit: int) -> list[StoredEvent]:
        e = events.c
        rows = self._conn.execute(select(e.id, e.type, e.at, e.payload).where(
            e.type.in_(list(types)), e.at >= since).order_by(e.at.desc()).limit(limit))
        return [StoredEvent(r.id, r.type, r.at, json.loads(r.payload)) for r in rows]
