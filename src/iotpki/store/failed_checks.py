"""Failed credential checks in a sliding window (`core.ra.failure_budget`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from iotpki.store.prepared import Prepared
from iotpki.store.schema import failed_checks

# Writes (store.prepared: the one write path).
_ADD = Prepared(insert(failed_checks).inline(), ("scope", "key", "failed_at"))
_PRUNE = Prepared(delete(failed_checks).where(failed_checks.c.failed_at <= bindparam("before")))


class SQLFailedCheckRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, scope: str, key: str, at: datetime) -> None:
        _ADD.execute(self._conn, {"scope": scope, "key": key, "failed_at": at})

    def since(self, scope: str, key: str, since: datetime) -> tuple[int, datetime | None]:
        row = self._conn.execute(select(func.count(), func.min(failed_checks.c.failed_at)).where(
            failed_checks.c.scope == scope, failed_checks.c.key == key,
            failed_checks.c.failed_at > since)).one()
        return int(row[0]), row[1]

    def prune(self, before: datetime) -> int:
        return max(_PRUNE.execute(self._conn, {"before": before}), 0)
