"""The fleet overview's counters (migration 0023): certificates by authority, profile, status
and the UTC day of their notAfter (`certificate_tallies`), issuances by authority and UTC hour
(`issuance_tallies`). `store.fleet_statistics` reads them, so the overview costs the same
whatever the store's size.

Every write to `certificates` tells a unit's `TallyLedger` what it changed (issue: +1; a status
change: -1 on the old status, +1 on the new). The ledger keeps the deltas in memory and writes
them once, as upserts in key order, right before the COMMIT: in a group commit
(`store.group_commit`) once per group, the units' deltas merged. So a certificate costs no
extra statement of its own, and on PostgreSQL every transaction takes its counter row locks
last and in one order: two concurrent writers can wait for each other's counters, never
deadlock on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Date, cast, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from iotpki.store.group_commit import GroupCommit
from iotpki.store.prepared import Prepared
from iotpki.store.schema import certificate_tallies, certificates, issuance_tallies

CertificateKey = tuple[int, str, str, date]  # authority id, profile, status, notAfter's day
IssuanceKey = tuple[int, int]  # authority id, hours since the epoch
Deltas = tuple[Mapping[CertificateKey, int], Mapping[IssuanceKey, int]]
_GROUP_KEY = "tallies"  # the open group's merged deltas in `GroupCommit.shared`
HOUR = 3600


def utc_day(dialect: str) -> Callable[[Any], Any]:
    """The UTC day of a stored timestamp, as the database computes it."""
    if dialect == "sqlite":  # stored as naive UTC text
        return lambda column: func.date(column, type_=Date)
    return lambda column: cast(func.timezone("UTC", column), Date)


def epoch_seconds(dialect: str) -> Callable[[Any], Any]:
    """POSIX seconds of a stored timestamp, computed by the database."""
    if dialect == "sqlite":  # stored as naive UTC text
        return lambda column: cast(func.strftime("%s", column), BigInteger)
    return lambda column: cast(func.floor(func.extract("epoch", column)), BigInteger)


def hour_of(moment: datetime) -> int:
    """Hours since the epoch (UTC) of `moment`'s hour."""
    return int(moment.timestamp()) // HOUR


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _upsert(table: Any, key: tuple[str, ...]) -> Callable[[str], Executable]:
    def build(dialect: str) -> Executable:
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert_(table)
        return stmt.on_conflict_do_update(index_elements=list(key),
                                          set_={"count": table.c.count + stmt.excluded.count})
    return build


_CERTIFICATE_KEY = ("authority_id", "profile", "status", "expires_on")
_ISSUANCE_KEY = ("authority_id", "issued_hour")
_ADD_CERTIFICATES = Prepared(_upsert(certificate_tallies, _CERTIFICATE_KEY),
                             (*_CERTIFICATE_KEY, "count"))
_ADD_ISSUANCES = Prepared(_upsert(issuance_tallies, _ISSUANCE_KEY), (*_ISSUANCE_KEY, "count"))
_CLEAR_CERTIFICATES = Prepared(certificate_tallies.delete())
_CLEAR_ISSUANCES = Prepared(issuance_tallies.delete())


class TallyLedger:
    """The counter changes of one unit of work, written before its COMMIT (`settle`)."""

    def __init__(self, group: GroupCommit | None = None) -> None:
        self._group = group
        self._certificates: Counter[CertificateKey] = Counter()
        self._issuances: Counter[IssuanceKey] = Counter()

    def issued(self, authority_id: int, profile: str, status: str, not_after: datetime,
               issued_at: datetime) -> None:
        self._certificates[(authority_id, profile, status, day_of(not_after))] += 1
        self._issuances[(authority_id, hour_of(issued_at))] += 1

    def moved(self, authority_id: int, profile: str, expires_on: date, old: str, new: str,
              count: int = 1) -> None:
        """`count` certificates of one profile and notAfter day went from `old` to `new`."""
        if old != new:
            self._certificates[(authority_id, profile, old, expires_on)] -= count
            self._certificates[(authority_id, profile, new, expires_on)] += count

    def settle(self, conn: Connection) -> None:
        """Write this unit's deltas now, or (in a group commit) merge them into the group's,
        written once before the group's COMMIT. Called as the unit commits."""
        mine: Deltas = (self._certificates, self._issuances)
        self._certificates, self._issuances = Counter(), Counter()
        if not any(mine[0].values()) and not any(mine[1].values()):
            return
        if self._group is None:
            _write(conn, mine)
            return
        # A new value, never changed in place: a unit that rolls back to its savepoint
        # restores the group's `shared` as it was (`GroupCommit.mark`).
        before: Deltas = self._group.shared.get(_GROUP_KEY, ({}, {}))
        merged: Deltas = (_merge(before[0], mine[0]), _merge(before[1], mine[1]))
        self._group.shared[_GROUP_KEY] = merged
        self._group.defer(_GROUP_KEY, lambda connection: _write(connection, merged))


def _merge(before: Mapping[Any, int], delta: Mapping[Any, int]) -> dict[Any, int]:
    # Not `Counter.__add__`: it drops the negative deltas of status changes.
    merged = dict(before)
    for key, n in delta.items():
        merged[key] = merged.get(key, 0) + n
    return merged


def _write(conn: Connection, deltas: Deltas) -> None:
    """Upserts in key order (certificates, then issuances): PostgreSQL row locks are taken
    in one order by every writer."""
    certificates, issuances = deltas
    _ADD_CERTIFICATES.execute_many(conn, [
        dict(zip(_CERTIFICATE_KEY, key, strict=True), count=n)
        for key, n in sorted(certificates.items()) if n])
    _ADD_ISSUANCES.execute_many(conn, [
        dict(zip(_ISSUANCE_KEY, key, strict=True), count=n)
        for key, n in sorted(issuances.items()) if n])


def recount(conn: Connection) -> bool:
    """Rebuild both counter tables from the certificates, in the caller's transaction (on
    PostgreSQL with the certificates locked against writers meanwhile); whether they had
    drifted. For stores written past the ledger: SQL by hand, or a node older than
    migration 0023 still writing after the upgrade (`iotpki doctor --recount-fleet`)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE certificates IN SHARE MODE"))
    c = certificates.c
    day = utc_day(conn.dialect.name)(c.not_after)
    hour = epoch_seconds(conn.dialect.name)(c.issued_at) // HOUR
    wanted = (
        {(a, p, st, d): int(n) for a, p, st, d, n in conn.execute(
            select(c.authority_id, c.profile, c.status, day, func.count())
            .group_by(c.authority_id, c.profile, c.status, day))},
        {(a, int(h)): int(n) for a, h, n in conn.execute(
            select(c.authority_id, hour, func.count()).group_by(c.authority_id, hour))})
    t, i = certificate_tallies.c, issuance_tallies.c
    kept = (
        {(a, p, st, d): int(n) for a, p, st, d, n in conn.execute(
            select(t.authority_id, t.profile, t.status, t.expires_on, t.count)) if n},
        {(a, int(h)): int(n) for a, h, n in conn.execute(
            select(i.authority_id, i.issued_hour, i.count)) if n})
    if kept == wanted:
        return False
    _CLEAR_CERTIFICATES.execute(conn)
    _CLEAR_ISSUANCES.execute(conn)
    _write(conn, wanted)
    return True
