"""Audit log repository: append-only rows plus a locked head row (see `iotpki.core.audit.log`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Connection, bindparam, select, update

from iotpki.core.audit.log import AuditEntry, AuditHead, AuditRecord, encode_details
from iotpki.store.group_commit import GroupCommit
from iotpki.store.prepared import Prepared
from iotpki.store.schema import audit_head, audit_log

# Prepared once: appends are on the issuance hot path (store.prepared).
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_FOR_UPDATE = Prepared(_HEAD.with_for_update())
_COLUMNS = ("seq", "at", "action", "outcome", "actor", "target", "details", "prev_hash", "hash")
_INSERT = Prepared(audit_log.insert().inline(), _COLUMNS)
_MOVE_HEAD = Prepared(update(audit_head).where(audit_head.c.id == 1).values(
    seq=bindparam("new_seq"), hash=bindparam("new_hash")))
_GROUP_HEAD = "audit_head"  # the group's head in `GroupCommit.shared`


class SQLAuditRepository:
    """In a group commit (`store.group_commit`) the units of one group share one head: the
    first reads and locks it, each moves it in memory, and it is written once before the
    group's COMMIT (one `FOR UPDATE` and one UPDATE per group, issue 21), in the deferred
    writes' order: right after the first unit's entries (no key or trigger depends on it)."""

    def __init__(self, conn: Connection, group: GroupCommit | None = None) -> None:
        self._conn = conn
        self._group = group

    def head_for_update(self) -> AuditHead:
        shared = self._shared_head()
        if shared is not None:
            return shared
        # FOR UPDATE on PostgreSQL; SQLite already holds the write lock (BEGIN IMMEDIATE).
        row = _HEAD_FOR_UPDATE.first(self._conn)
        assert row is not None, "the audit head row is created by the first migration"
        head = AuditHead(row[0], row[1])
        if self._group is not None:
            self._group.shared[_GROUP_HEAD] = head
        return head

    def head(self) -> AuditHead:
        shared = self._shared_head()
        if shared is not None:
            return shared
        row = self._conn.execute(_HEAD).one()
        return AuditHead(row.seq, row.hash)

    def append(self, entry: AuditEntry) -> None:
        self.append_many([entry])

    def append_many(self, entries: list[AuditEntry]) -> None:
        rows = [_row(e) for e in entries]
        last = AuditHead(entries[-1].seq, entries[-1].hash)
        if self._group is None:
            _INSERT.execute_many(self._conn, rows)
            _move_head(self._conn, last)
            return
        # The entries too are written with the group's COMMIT: nothing reads them before.
        self._group.append(lambda conn: _INSERT.execute_many(conn, rows))
        self._group.shared[_GROUP_HEAD] = last
        self._group.defer(_GROUP_HEAD, lambda conn: _move_head(conn, last))

    def _shared_head(self) -> AuditHead | None:
        if self._group is None:
            return None
        head: AuditHead | None = self._group.shared.get(_GROUP_HEAD)
        return head

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]:
        stmt = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        for row in self._conn.execute(stmt):
            record = AuditRecord(row.action, row.outcome, row.actor, row.target,
                                 json.loads(row.details))
            yield AuditEntry(row.seq, row.at, record, row.prev_hash, row.hash)


def _move_head(conn: Connection, head: AuditHead) -> None:
    _MOVE_HEAD.execute(conn, {"new_seq": head.seq, "new_hash": head.hash})


def _row(entry: AuditEntry) -> dict[str, object]:
    record = entry.record
    return {
        "seq": entry.seq, "at": entry.at, "action": record.action,
        "outcome": record.outcome, "actor": record.actor, "target": record.target,
        "details": (entry.details_json if entry.details_json is not None
                    else encode_details(record.details)),
        "prev_hash": entry.prev_hash, "hash": entry.hash,
    }
