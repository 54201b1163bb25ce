"""Renewal windows pulled forward (`core.lifecycle.ports.RenewalPullRepository`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, insert, select

from iotpki.core.lifecycle.ports import RenewalPull
from iotpki.store.prepared import Prepared
from iotpki.store.schema import renewal_pulls

# Writes (store.prepared: the one write path).
_ADD = Prepared(insert(renewal_pulls).inline(),
                ("authority", "profile", "at", "spread_seconds", "reason"))


class SQLRenewalPullRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add_pull(self, pull: RenewalPull) -> None:
        _ADD.execute(self._conn, {
            "authority": pull.authority, "profile": pull.profile, "at": pull.at,
            "spread_seconds": int(pull.spread.total_seconds()), "reason": pull.reason})

    def pulls(self, authority: str) -> list[RenewalPull]:
        rows = self._conn.execute(select(renewal_pulls).where(
            renewal_pulls.c.authority == authority).order_by(renewal_pulls.c.at)).all()
        return [RenewalPull(r.authority, r.profile, r.at, timedelta(seconds=r.spread_seconds),
                            r.reason) for r in rows]
