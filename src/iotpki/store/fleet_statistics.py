"""Counts for the fleet overview (`core.lifecycle.fleet_overview`), constant in the store's
size: certificates by authority, profile, status and notAfter day, and issuances by authority
and hour, come from the counters every write keeps in step (`store.certificate_tallies`,
migration 0023); only the partial day at now and at each forecast edge, and the partial hour
at a rate window's start, are counted from an index range (`ix_certificates_fleet`,
`ix_certificates_issued`: one day's or hour's certificates). Events come by type and time
(`ix_events_type_at`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from sqlalchemy import ColumnElement, Connection, case, func, select

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.events import StoredEvent
from iotpki.core.lifecycle.fleet_overview import EXPIRED, Tally
from iotpki.store.certificate_tallies import HOUR, day_of, hour_of
from iotpki.store.ids import IdCache
from iotpki.store.schema import (
    authorities,
    certificate_tallies,
    certificates,
    events,
    issuance_tallies,
)

GOOD = CertificateStatus.GOOD.value


class SQLFleetStatistics:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _authority_ids(self, labels: Sequence[str]) -> list[int]:
        return [self._ids.id_of(self._conn, authorities, label) for label in labels]

    def tally(self, labels: Sequence[str], now: datetime,
              edges: Sequence[datetime]) -> list[Tally]:
        """From the day counters, sliced at the days of now and of each edge (`_slot`); the
        certificates of such a day are split at the instant by an index range count."""
        instants = [now, *edges]
        days = [day_of(moment) for moment in instants]
        assert days == sorted(set(days)), "now and every edge fall on different days"
        found: list[Tally] = []
        for authority_id in self._authority_ids(labels):
            partial: dict[int, dict[str, int]] = {}  # instant → profile → that day's count
            for profile, status, at, count in self._by_slot(authority_id, days):
                if status != GOOD:  # only good certificates are sliced by expiry
                    found.append(Tally(profile, status, len(edges), count))
                elif at < 0:
                    found.append(Tally(profile, EXPIRED, 0, count))
                elif at % 2:  # whole days between two instants' days
                    found.append(Tally(profile, GOOD, at // 2, count))
                else:
                    partial.setdefault(at // 2, {})[profile] = count
            for index, on_day in sorted(partial.items()):
                found += self._split(authority_id, on_day, index, instants[index], days[index])
        return found

    def _by_slot(self, authority_id: int, days: Sequence[date]) -> list[tuple[str, str, int, int]]:
        t = certificate_tallies.c
        # Grouped outside: PostgreSQL would not match a GROUP BY `_slot` to the selected one
        # (their dates are bound as different parameters).
        sliced = select(t.profile, t.status, _slot(t.expires_on, days).label("slot"),
                        t.count).where(t.authority_id == authority_id).subquery()
        s = sliced.c
        rows = self._conn.execute(select(s.profile, s.status, s.slot, func.sum(s.count))
                                  .group_by(s.profile, s.status, s.slot))
        return [(profile, status, int(at), int(count)) for profile, status, at, count in rows
                if count]

    def _split(self, authority_id: int, on_day: dict[str, int], index: int,
               instant: datetime, day: date) -> list[Tally]:
        """The good certificates (by profile) whose notAfter falls on the day of `instant`
        (`instants[index]`): those before it are expired (index 0) or in the slice before
        the edge, the others in the slice after it. One index range: that day's."""
        c = certificates.c
        rows = self._conn.execute(select(c.profile, func.count()).where(
            c.authority_id == authority_id, c.status == GOOD,
            c.not_after >= datetime.combine(day, time(), UTC), c.not_after < instant,
        ).group_by(c.profile))
        before = {str(profile): int(n) for profile, n in rows}
        found = []
        for profile, count in on_day.items():
            earlier = int(before.get(profile, 0))
            found += [Tally(profile, EXPIRED, 0, earlier) if index == 0
                      else Tally(profile, GOOD, index - 1, earlier),
                      Tally(profile, GOOD, index, count - earlier)]
        return found

    def issued_since(self, labels: Sequence[str], since: datetime) -> int:
        """Whole hours after `since`'s from the counters; the rest of its hour from the
        index."""
        hour = hour_of(since)
        next_hour = datetime.fromtimestamp((hour + 1) * HOUR, UTC)
        c, t = certificates.c, issuance_tallies.c
        total = 0
        for authority_id in self._authority_ids(labels):
            total += int(self._conn.execute(select(func.coalesce(func.sum(t.count), 0)).where(
                t.authority_id == authority_id, t.issued_hour > hour)).scalar_one())
            total += int(self._conn.execute(select(func.count()).where(
                c.authority_id == authority_id, c.issued_at >= since,
                c.issued_at < next_hour)).scalar_one())
        return total

    def recent_events(self, types: Sequence[str], since: datetime,
                      limit: int) -> list[StoredEvent]:
        e = events.c
        rows = self._conn.execute(select(e.id, e.type, e.at, e.payload).where(
            e.type.in_(list(types)), e.at >= since).order_by(e.at.desc()).limit(limit))
        return [StoredEvent(r.id, r.type, r.at, json.loads(r.payload)) for r in rows]


def _slot(expires_on: ColumnElement[date], days: Sequence[date]) -> ColumnElement[int]:
    """-1 before the first day; `2k` on `days[k]`; `2k + 1` after it (and before the next)."""
    whens: list[tuple[ColumnElement[bool], int]] = [(expires_on < days[0], -1)]
    for k, day in enumerate(days):
        whens.append((expires_on == day, 2 * k))
        if k + 1 < len(days):
            whens.append((expires_on < days[k + 1], 2 * k + 1))
    return case(*whens, else_=2 * len(days) - 1)
