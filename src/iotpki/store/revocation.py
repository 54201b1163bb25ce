"""Revocation publication tables: the change counter and status index (RFC 5280 §5.2.4 deltas,
RFC 6960 answers), and published CRLs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, cast, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.serial import serial_hex
from iotpki.core.revocation.status import (
    CRLInfo,
    CRLKind,
    PublishedCRL,
    StatusEntry,
)
from iotpki.store.bulk import execute_many, process_rows
from iotpki.store.ids import IdCache
from iotpki.store.schema import (
    authorities,
    certificates,
    crl_numbers,
    crls,
    revocation_counters,
)
from iotpki.wire.crl import RevokedEntry

_STATUS_COLUMNS = (
    certificates.c.serial, certificates.c.status, certificates.c.revoked_at,
    certificates.c.revocation_reason, certificates.c.invalidity_date, certificates.c.released_at,
)
_ON_CRL = (CertificateStatus.REVOKED.value, CertificateStatus.HELD.value)
_STREAM_ROWS = 20_000
# A held certificate keeps its original revocation time (RFC 5280 §5.3.1, certificateHold).
_BULK_UPDATE = ("UPDATE certificates SET status = ?, revocation_reason = ?, status_seq = ?, "
                "released_at = NULL, invalidity_date = ?, revoked_at = COALESCE(revoked_at, ?) "
                "WHERE authority_id = ? AND serial = ?")
_BULK_UPDATE_ANY = _BULK_UPDATE.replace("serial = ?", "serial = ANY(?)").replace("?", "%s")


def _epoch_seconds(dialect: str) -> Callable[[Any], Any]:
    """POSIX seconds computed by the database: a million datetimes parsed in Python would
    take longer than the whole CRL."""
    if dialect == "sqlite":  # stored as naive UTC text
        return lambda column: cast(func.strftime("%s", column), BigInteger)
    return lambda column: cast(func.floor(func.extract("epoch", column)), BigInteger)


def _entry(row: Any) -> StatusEntry:
    return StatusEntry(row[0], CertificateStatus(row[1]), row[2], row[3], row[4], row[5])


class SQLRevocationIndex:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _id(self, authority: str) -> int:
        return self._ids.id_of(self._conn, authorities, authority)

    def record_change(
        self, authority: str, serial: int, at: datetime, *, released_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> int:
        authority_id = self._id(authority)
        c = revocation_counters.c
        seq = self._conn.execute(
            update(revocation_counters).where(c.authority_id == authority_id)
            .values(seq=c.seq + 1, changed_at=at).returning(c.seq)).scalar()
        if seq is None:  # the authority's first change: the row lock starts here
            seq = 1
            self._conn.execute(insert(revocation_counters).values(
                authority_id=authority_id, seq=seq, changed_at=at))
        self._conn.execute(update(certificates).where(
            certificates.c.authority_id == authority_id,
            certificates.c.serial == serial_hex(serial),
        ).values(status_seq=seq, released_at=released_at, invalidity_date=invalidity_date))
        return int(seq)

    def record_bulk_change(
        self, authority: str, serials: list[str], status: CertificateStatus, at: datetime,
        reason: str, invalidity_date: datetime | None,
    ) -> int:
        if not serials:
            return self.counter(authority)
        authority_id = self._id(authority)
        seq = self._bump(authority_id, at)
        c = certificates.c
        # One statement executed for every serial at the driver level: the unique
        # (authority, serial) index finds each row; the values are shared.
        shared = process_rows(self._conn, [c.status, c.revocation_reason, c.status_seq,
                                           c.invalidity_date, c.revoked_at],
                              [(status.value, reason, seq, invalidity_date, at)])[0]
        if self._conn.dialect.name == "postgresql":  # one statement, the serials as an array
            self._conn.exec_driver_sql(_BULK_UPDATE_ANY, (*shared, authority_id, list(serials)))
        else:  # SQLite: one prepared statement stepped per serial (no round trips)
            execute_many(self._conn, _BULK_UPDATE,
                         [(*shared, authority_id, serial) for serial in serials])
        return seq

    def _bump(self, authority_id: int, at: datetime) -> int:
        c = revocation_counters.c
        seq = self._conn.execute(
            update(revocation_counters).where(c.authority_id == authority_id)
            .values(seq=c.seq + 1, changed_at=at).returning(c.seq)).scalar()
        if seq is None:
            seq = 1
            self._conn.execute(insert(revocation_counters).values(
                authority_id=authority_id, seq=seq, changed_at=at))
        return int(seq)

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

    def crl_entries(self, authority: str) -> Iterator[RevokedEntry]:
        c = certificates.c
        epoch = _epoch_seconds(self._conn.dialect.name)
        stmt = select(c.serial, epoch(c.revoked_at), c.revocation_reason,
                      epoch(c.invalidity_date)).where(
            c.authority_id == self._id(authority), c.status.in_(_ON_CRL),
        ).execution_options(yield_per=_STREAM_ROWS)
        for rows in self._conn.execute(stmt).partitions():
            yield from (RevokedEntry(*row) for row in rows)

    def changed_since(self, authority: str, seq: int) -> list[StatusEntry]:
        rows = self._conn.execute(select(*_STATUS_COLUMNS).where(
            certificates.c.authority_id == self._id(authority),
            certificates.c.status_seq > seq).order_by(certificates.c.status_seq))
        return [_entry(r) for r in rows]


class SQLCRLRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _id(self, authority: str) -> int:
        return self._ids.id_of(self._conn, authorities, authority)

    def lock_number(self, authority: str) -> int:
        authority_id = self._id(authority)
        # Create the counter row if absent, then lock it. Two nodes publishing an authority's
        # first CRL at once both see no row; ON CONFLICT DO NOTHING makes the second insert wait
        # for the first and do nothing, where a plain INSERT failed on the primary key.
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        self._conn.execute(dialect.insert(crl_numbers).values(
            authority_id=authority_id, last_number=0).on_conflict_do_nothing())
        number = self._conn.execute(
            select(crl_numbers.c.last_number).where(crl_numbers.c.authority_id == authority_id)
            .with_for_update()).scalar_one()
        return int(number)

    def set_number(self, authority: str, number: int) -> None:
        self._conn.execute(update(crl_numbers).where(
            crl_numbers.c.authority_id == self._id(authority)).values(last_number=number))

    def add(self, crl: PublishedCRL) -> None:
        info = crl.info
        self._conn.execute(insert(crls).values(
            authority_id=self._id(info.authority), kind=info.kind.value, number=info.number,
            base_number=info.base_number, revocation_seq=info.revocation_seq,
            this_update=info.this_update, next_update=info.next_update, entries=info.entries,
            der=crl.der))

    def _newest(self, authority: str, kind: CRLKind, *columns: Any) -> Any:
        return self._conn.execute(select(*columns).where(
            crls.c.authority_id == self._id(authority), crls.c.kind == kind.value)
            .order_by(crls.c.number.desc()).limit(1)).first()

    def latest(self, authority: str, kind: CRLKind) -> PublishedCRL | None:
        row = self._newest(authority, kind, *_INFO_COLUMNS, crls.c.der)
        return PublishedCRL(_info(authority, kind, row), row.der) if row is not None else None

    def latest_info(self, authority: str, kind: CRLKind) -> CRLInfo | None:
        row = self._newest(authority, kind, *_INFO_COLUMNS)
        return _info(authority, kind, row) if row is not None else None


_INFO_COLUMNS = (crls.c.number, crls.c.base_number, crls.c.revocation_seq, crls.c.this_update,
                 crls.c.next_update, crls.c.entries)


def _info(authority: str, kind: CRLKind, row: Any) -> CRLInfo:
    return CRLInfo(authority, kind, row.number, row.base_number, row.revocation_seq,
                   row.this_update, row.next_update, row.entries)
