"""Revocation publication tables: the change counter and status index (RFC 5280 §5.2.4 deltas,
RFC 6960 answers), and published CRLs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.serial import serial_hex
from iotpki.core.errors import ConflictError, NotFoundError
from iotpki.core.revocation.status import (
    CRLInfo,
    CRLKind,
    PublishedCRL,
    StatusEntry,
)
from iotpki.store.certificate_tallies import TallyLedger, epoch_seconds, utc_day
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import (
    authorities,
    certificates,
    crl_numbers,
    crl_shards,
    crls,
    revocation_counters,
    shard_crls,
)
from iotpki.wire.crl import RevokedEntry

_STATUS_COLUMNS = (
    certificates.c.serial, certificates.c.status, certificates.c.revoked_at,
    certificates.c.revocation_reason, certificates.c.invalidity_date, certificates.c.released_at,
)
_ON_CRL = (CertificateStatus.REVOKED.value, CertificateStatus.HELD.value)
_STREAM_ROWS = 20_000
_C = certificates.c
_RC = revocation_counters.c
# Writes (store.prepared: the one write path).
_BUMP = Prepared(update(revocation_counters).where(_RC.authority_id == bindparam("authority"))
                 .values(seq=_RC.seq + 1, changed_at=bindparam("at")).returning(_RC.seq))
_FIRST_COUNTER = Prepared(insert(revocation_counters).inline(),
                          ("authority_id", "seq", "changed_at"))
_MARK_CHANGE = Prepared(update(certificates).where(
    _C.authority_id == bindparam("authority"), _C.serial == bindparam("serial_hex"),
).values(status_seq=bindparam("seq"), released_at=bindparam("released"),
         invalidity_date=bindparam("invalidity")))


def _from_statuses() -> Any:
    """Only rows still in a status the change may move (good for a hold; good or on hold for
    a revocation): a certificate revoked by another transaction since the candidates were
    read is not put on hold, a hold is not reset."""
    return _C.status.in_([bindparam("from_a"), bindparam("from_b")])


_MAY_MOVE = {CertificateStatus.HELD: ("good", "good"),
             CertificateStatus.REVOKED: ("good", "on-hold")}


def _bulk_update(dialect: str) -> Executable:
    """One statement for every serial: on PostgreSQL the serials as one array
    (`serial = ANY(...)`), on SQLite one prepared statement stepped per serial.
    A held certificate keeps its original revocation time (RFC 5280 §5.3.1, certificateHold)."""
    serial: Any = bindparam("serial")
    if dialect == "postgresql":
        serial = any_(bindparam("serials", type_=postgresql.ARRAY(_C.serial.type)))
    return update(certificates).where(_C.authority_id == bindparam("authority"),
                                      _C.serial == serial, _from_statuses()).values(
        status=bindparam("status"), revocation_reason=bindparam("reason"),
        status_seq=bindparam("seq"), released_at=None,
        invalidity_date=bindparam("invalidity"),
        revoked_at=func.coalesce(_C.revoked_at, bindparam("at", type_=_C.revoked_at.type)))


_BULK_UPDATE = Prepared(_bulk_update)


def _bulk_before(dialect: str) -> Executable:
    """The certificates a bulk change moves (those in a status it may move), by profile,
    status and notAfter day: what the fleet counters lose and gain. On PostgreSQL the rows
    are locked first (FOR UPDATE) so a concurrent change of one of them waits, then is seen;
    on SQLite the serials come as one JSON array (`json_each`)."""
    if dialect == "postgresql":
        serial: Any = _C.serial == any_(bindparam("serials",
                                                  type_=postgresql.ARRAY(_C.serial.type)))
    else:
        serial = _C.serial.in_(select(text("value")).select_from(
            func.json_each(bindparam("serials"))))
    day = utc_day(dialect)(_C.not_after).label("expires_on")
    rows = select(_C.profile, _C.status, day).where(
        _C.authority_id == bindparam("authority"), serial, _from_statuses())
    if dialect == "postgresql":
        rows = rows.with_for_update()
    moved = rows.subquery()
    return select(moved.c.profile, moved.c.status, moved.c.expires_on, func.count()).group_by(
        moved.c.profile, moved.c.status, moved.c.expires_on)


_BULK_BEFORE = Prepared(_bulk_before)


def _lock_number(dialect: str) -> Executable:
    # ON CONFLICT DO NOTHING: see SQLCRLRepository.lock_number.
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_(crl_numbers).values(authority_id=bindparam("authority"),
                                       last_number=0).on_conflict_do_nothing()


_CREATE_NUMBER = Prepared(_lock_number)
_SET_NUMBER = Prepared(update(crl_numbers).where(
    crl_numbers.c.authority_id == bindparam("authority")).values(last_number=bindparam("number")))
_CRL_COLUMNS = ("authority_id", "kind", "number", "base_number", "revocation_seq",
                "this_update", "next_update", "entries", "der")
_ADD_CRL = Prepared(insert(crls).inline(), _CRL_COLUMNS)
_ADD_SHARD_CRL = Prepared(insert(shard_crls).inline(), ("shard", *_CRL_COLUMNS))
_SET_SHARD_NUMBER = Prepared(update(crl_shards).where(
    crl_shards.c.authority_id == bindparam("authority"), crl_shards.c.shard == bindparam("shard"),
).values(last_number=bindparam("number")))


_ON_CRL_LITERAL = text("certificates.status IN ('revoked', 'on-hold')")


def _in_shard(shard: int | None) -> Any:
    """A CRL's scope: one shard's certificates, or (None) those in no shard; an unsharded
    CA's are all in none."""
    column = certificates.c.crl_shard
    return column.is_(None) if shard is None else column == shard


def _entry(row: Any) -> StatusEntry:
    return StatusEntry(row[0], CertificateStatus(row[1]), row[2], row[3], row[4], row[5])


class SQLRevocationIndex:
    def __init__(self, conn: Connection, ids: IdCache,
                 tallies: TallyLedger | None = None) -> None:
        self._conn = conn
        self._ids = ids
        self._tallies = tallies  # the unit's fleet counters (store.certificate_tallies)

    def _id(self, authority: str) -> int:
        return self._ids.id_of(self._conn, authorities, authority)

    def record_change(
        self, authority: str, serial: int, at: datetime, *, released_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> int:
        authority_id = self._id(authority)
        seq = self._bump(authority_id, at)
        _MARK_CHANGE.execute(self._conn, {
            "authority": authority_id, "serial_hex": serial_hex(serial), "seq": seq,
            "released": released_at, "invalidity": invalidity_date})
        return seq

    def record_bulk_change(
        self, authority: str, serials: list[str], status: CertificateStatus, at: datetime,
        reason: str, invalidity_date: datetime | None,
    ) -> int:
        if not serials:
            return self.counter(authority)
        authority_id = self._id(authority)
        seq = self._bump(authority_id, at)
        # One statement for every serial: the unique (authority, serial) index finds each
        # row; the shared values are bound once.
        from_a, from_b = _MAY_MOVE[status]
        shared = {"status": status.value, "reason": reason, "seq": seq,
                  "invalidity": invalidity_date, "at": at, "authority": authority_id,
                  "from_a": from_a, "from_b": from_b}
        self._count_bulk(authority_id, serials, status, shared)
        if self._conn.dialect.name == "postgresql":  # one statement, the serials as an array
            _BULK_UPDATE.execute(self._conn, {**shared, "serials": list(serials)})
        else:  # SQLite: one prepared statement stepped per serial (no round trips)
            _BULK_UPDATE.execute_many(self._conn, [{"serial": s} for s in serials], shared)
        return seq

    def _count_bulk(self, authority_id: int, serials: list[str], status: CertificateStatus,
                    shared: Mapping[str, Any]) -> None:
        """What the change moves, for the counters; every serial must still be movable (on
        PostgreSQL, locked here): one that another transaction changed since the candidates
        were read makes the whole change a conflict, nothing written."""
        assert self._tallies is not None, "certificates are written through the unit of work"
        listed: Any = (list(serials) if self._conn.dialect.name == "postgresql"
                       else json.dumps(serials))
        moved = _BULK_BEFORE.all(self._conn, {
            "authority": authority_id, "serials": listed,
            "from_a": shared["from_a"], "from_b": shared["from_b"]})
        changed = len(serials) - sum(int(count) for *_, count in moved)
        if changed:
            raise ConflictError(f"{changed} of the {len(serials)} certificates changed status "
                                "since they were counted: nothing changed, review the count "
                                "again")
        for profile, old, expires_on, count in moved:
            self._tallies.moved(authority_id, profile, expires_on, old, status.value, count)

    def _bump(self, authority_id: int, at: datetime) -> int:
        row = _BUMP.first(self._conn, {"authority": authority_id, "at": at})
        if row is None:  # the authority's first change: the row lock starts here
            _FIRST_COUNTER.execute(self._conn, {"authority_id": authority_id, "seq": 1,
                                                "changed_at": at})
            return 1
        return int(row[0])

    def counter(self, authority: str) -> int:
        seq = self._conn.execute(select(revocation_counters.c.seq).where(
            revocation_counters.c.authority_id == self._id(authority))).scalar()
        return int(seq or 0)

    def counters(self) -> Mapping[str, int]:
        rows = self._conn.execute(select(revocation_counters.c.authority_id,
                                         revocation_counters.c.seq)).all()
        return {self._ids.label_of(self._conn, authorities, a): int(s) for a, s in rows}

    def lookup(self, authority: str, serial: int) -> StatusEntry | None:
        row = self._conn.execute(select(*_STATUS_COLUMNS).where(
            certificates.c.authority_id == self._id(authority),
            certificates.c.serial == serial_hex(serial))).first()
        return _entry(row) if row is not None else None

    def revoked(self, authority: str) -> Iterator[StatusEntry]:
        stmt = select(*_STATUS_COLUMNS).where(
            certificates.c.authority_id == self._id(authority),
            certificates.c.status.in_(_ON_CRL)).execution_options(yield_per=_STREAM_ROWS)
        result = self._conn.execute(stmt)
        for row in result:
            yield _entry(row)

    def crl_entries(self, authority: str, shard: int | None = None) -> Iterator[RevokedEntry]:
        c = certificates.c
        # computed by the database: a million datetimes parsed in Python would take longer
        # than the whole CRL
        epoch = epoch_seconds(self._conn.dialect.name)
        # A shard's rows through the partial index on revoked rows: its predicate must be
        # written as the index's for the planners (SQLite's above all) to use it.
        status = c.status.in_(_ON_CRL) if shard is None else _ON_CRL_LITERAL
        stmt = select(c.serial, epoch(c.revoked_at), c.revocation_reason,
                      epoch(c.invalidity_date)).where(
            c.authority_id == self._id(authority), status, _in_shard(shard),
        ).execution_options(yield_per=_STREAM_ROWS)
        for rows in self._conn.execute(stmt).partitions():
            yield from (RevokedEntry(*row) for row in rows)

    def changed_since(self, authority: str, seq: int,
                      shard: int | None = None) -> list[StatusEntry]:
        rows = self._conn.execute(select(*_STATUS_COLUMNS).where(
            certificates.c.authority_id == self._id(authority),
            certificates.c.status_seq > seq, _in_shard(shard))
            .order_by(certificates.c.status_seq))
        return [_entry(r) for r in rows]

    def shard_changes(self, authority: str, seq: int) -> Mapping[int | None, int]:
        c = certificates.c
        rows = self._conn.execute(select(c.crl_shard, func.max(c.status_seq)).where(
            c.authority_id == self._id(authority), c.status_seq > seq).group_by(c.crl_shard))
        return {None if shard is None else int(shard): int(newest) for shard, newest in rows}


class SQLCRLRepository:
    """The authority's own CRLs in `crls`, its shards' in `shard_crls` (one number
    sequence per scope, RFC 5280 §5.2.3)."""

    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _id(self, authority: str) -> int:
        return self._ids.id_of(self._conn, authorities, authority)

    def lock_number(self, authority: str, shard: int | None = None) -> int:
        authority_id = self._id(authority)
        if shard is not None:  # registered by the shard's first issuance
            number = self._conn.execute(select(crl_shards.c.last_number).where(
                crl_shards.c.authority_id == authority_id, crl_shards.c.shard == shard)
                .with_for_update()).scalar()
            if number is None:
                raise NotFoundError(f"no CRL shard {shard} of {authority}")
            return int(number)
        # Create the counter row if absent, then lock it. Two nodes publishing an authority's
        # first CRL at once both see no row; ON CONFLICT DO NOTHING makes the second insert wait
        # for the first and do nothing, where a plain INSERT failed on the primary key.
        _CREATE_NUMBER.execute(self._conn, {"authority": authority_id})
        number = self._conn.execute(
            select(crl_numbers.c.last_number).where(crl_numbers.c.authority_id == authority_id)
            .with_for_update()).scalar_one()
        return int(number)

    def set_number(self, authority: str, number: int, shard: int | None = None) -> None:
        params = {"authority": self._id(authority), "number": number}
        if shard is None:
            _SET_NUMBER.execute(self._conn, params)
        else:
            _SET_SHARD_NUMBER.execute(self._conn, {**params, "shard": shard})

    def add(self, crl: PublishedCRL) -> None:
        info = crl.info
        row = {"authority_id": self._id(info.authority), "kind": info.kind.value,
               "number": info.number, "base_number": info.base_number,
               "revocation_seq": info.revocation_seq, "this_update": info.this_update,
               "next_update": info.next_update, "entries": info.entries, "der": crl.der}
        if info.shard is None:
            _ADD_CRL.execute(self._conn, row)
        else:
            _ADD_SHARD_CRL.execute(self._conn, {**row, "shard": info.shard})

    def _newest(self, authority: str, kind: CRLKind, shard: int | None, der: bool) -> Any:
        table = crls if shard is None else shard_crls
        columns = [table.c[name] for name in _INFO_COLUMNS] + ([table.c.der] if der else [])
        scope = [table.c.authority_id == self._id(authority), table.c.kind == kind.value]
        if shard is not None:
            scope.append(table.c.shard == shard)
        return self._conn.execute(select(*columns).where(*scope)
                                  .order_by(table.c.number.desc()).limit(1)).first()

    def latest(self, authority: str, kind: CRLKind,
               shard: int | None = None) -> PublishedCRL | None:
        row = self._newest(authority, kind, shard, der=True)
        return PublishedCRL(_info(authority, kind, row, shard), row.der) if row else None

    def latest_info(self, authority: str, kind: CRLKind,
                    shard: int | None = None) -> CRLInfo | None:
        row = self._newest(authority, kind, shard, der=False)
        return _info(authority, kind, row, shard) if row is not None else None


_INFO_COLUMNS = ("number", "base_number", "revocation_seq", "this_update", "next_update",
                 "entries")


def _info(authority: str, kind: CRLKind, row: Any, shard: int | None) -> CRLInfo:
    return CRLInfo(authority, kind, row.number, row.base_number, row.revocation_seq,
                   row.this_update, row.next_update, row.entries, shard)
