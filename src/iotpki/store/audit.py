"""Audit log repository: append-only rows plus a locked head row (see `iotpki.core.audit.log`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Connection, bindparam, select, update

from iotpki.core.audit.log import AuditEntry, AuditHead, AuditRecord
from iotpki.store.prepared import Prepared
from iotpki.store.schema import audit_head, audit_log

# Prepared once: appends are on the issuance hot path (store.prepared).
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_FOR_UPDATE = Prepared(_HEAD.with_for_update())
_COLUMNS = ("seq", "at", "action", "outcome", "actor", "target", "details", "prev_hash", "hash")
_INSERT = Prepared(audit_log.insert().inline(), _COLUMNS)
_MOVE_HEAD = Prepared(update(audit_head).where(audit_head.c.id == 1).values(
    seq=bindparam("new_seq"), hash=bindparam("new_hash")))
_JSON = json.JSONEncoder(sort_keys=True, default=str)


class SQLAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def head_for_update(self) -> AuditHead:
        # FOR UPDATE on PostgreSQL; SQLite already holds the write lock (BEGIN IMMEDIATE).
        row = _HEAD_FOR_UPDATE.first(self._conn)
        assert row is not None, "the audit head row is created by the first migration"
        return AuditHead(row[0], row[1])

    def head(self) -> AuditHead:
        row = self._conn.execute(_HEAD).one()
        return AuditHead(row.seq, row.hash)

    def append(self, entry: AuditEntry) -> None:
        self.append_many([entry])

    def append_many(self, entries: list[AuditEntry]) -> None:
        _INSERT.execute_many(self._conn, [_row(e) for e in entries])
        last = entries[-1]
        _MOVE_HEAD.execute(self._conn, {"new_seq": last.seq, "new_hash": last.hash})

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]:
        stmt = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        for row in self._conn.execute(stmt):
            record = AuditRecord(row.action, row.outcome, row.actor, row.target,
                                 json.loads(row.details))
            yield AuditEntry(row.seq, row.at, record, row.prev_hash, row.hash)


def _row(entry: AuditEntry) -> dict[str, object]:
    record = entry.record
    return {
        "seq": entry.seq, "at": entry.at, "action": record.action,
        "outcome": record.outcome, "actor": record.actor, "target": record.target,
        "details": _JSON.encode(record.details),
        "prev_hash": entry.prev_hash, "hash": entry.hash,
    }
