"""The fleet at a glance, per organization: certificates counted by profile and status (good,
on hold, revoked, expired), how many expire soon (the next 7, 30 and 90 days and each of the
next 12 months), and the recent issuance, renewal and refusal rates.

Counts come from the store's counters, kept in step by every write (`FleetStatistics.tally`,
`issued_since`), never from reading certificates: they cost the same whatever the store's
size. Renewals and refused enrollments are read from the event outbox, newest first, up to
`EVENT_SCAN` events per window: beyond that the figure is shown as a lower bound
(`RateCount.capped`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from iotpki.core.clock import Clock
from iotpki.core.events import StoredEvent
from iotpki.core.ports import Transaction

EXPIRED = "expired"  # a good certificate past its notAfter
STATUSES = ("good", "on-hold", "revoked", EXPIRED)
HORIZONS = (7, 30, 90)  # days
MONTHS = 12
WINDOWS = (("24 h", timedelta(hours=24)), ("7 days", timedelta(days=7)))
EVENT_SCAN = 10_000
RENEWAL_METHOD = "current-certificate"


@dataclass(frozen=True)
class CertificateCount:
    profile: str
    status: str  # one of STATUSES
    count: int


@dataclass(frozen=True)
class Tally:
    """Certificates of one profile and status; for good ones, which expiry slice: the first
    `edges[bucket]` their notAfter is before (`len(edges)`: after every edge)."""

    profile: str
    status: str  # one of STATUSES
    bucket: int
    count: int


class FleetStatistics(Protocol):
    def tally(self, authorities: Sequence[str], now: datetime,
              edges: Sequence[datetime]) -> list[Tally]:
        """Certificates of these authorities by profile, status (`EXPIRED` for good ones
        whose notAfter is before `now`) and expiry slice, exact, at a cost that does not
        grow with the number of certificates."""
        ...

    def issued_since(self, authorities: Sequence[str], since: datetime) -> int: ...

    def recent_events(self, types: Sequence[str], since: datetime,
                      limit: int) -> list[StoredEvent]:
        """Events of these types at or after `since`, newest first."""
        ...


class OwnedAuthority(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def organization(self) -> str: ...


class AuthorityList(Protocol):
    def list(self) -> Sequence[OwnedAuthority]: ...


class FleetUnitOfWork(Transaction, Protocol):
    @property
    def fleet(self) -> FleetStatistics: ...

    @property
    def authorities(self) -> AuthorityList: ...


@dataclass(frozen=True)
class RateCount:
    window: str
    count: int
    capped: bool = False  # more events than were read: `count` is a lower bound


@dataclass(frozen=True)
class Rates:
    issued: tuple[RateCount, ...]
    renewed: tuple[RateCount, ...]
    refused: tuple[RateCount, ...]
    renewal_failures: tuple[RateCount, ...]


@dataclass(frozen=True)
class ExpiryBucket:
    label: str
    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True)
class Overview:
    organization: str
    at: datetime
    counts: tuple[CertificateCount, ...]
    horizons: tuple[ExpiryBucket, ...]  # cumulative: within 7, 30, 90 days
    months: tuple[ExpiryBucket, ...]  # each of the next 12 months (30-day slices)
    rates: Rates

    def total(self, status: str) -> int:
        return sum(c.count for c in self.counts if c.status == status)

    def by_profile(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for c in self.counts:
            table.setdefault(c.profile, dict.fromkeys(STATUSES, 0))[c.status] += c.count
        return dict(sorted(table.items()))


def expiry_edges(now: datetime) -> list[datetime]:
    """The slice boundaries: every horizon and the end of every 30-day month."""
    days = sorted({*HORIZONS, *(30 * (m + 1) for m in range(MONTHS))})
    return [now + timedelta(days=d) for d in days]


class FleetOverview:
    def __init__(self, uow: Callable[[], FleetUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def overview(self, organization: str) -> Overview:
        now, edges = self._clock.now(), expiry_edges(self._clock.now())
        with self._uow() as uow:
            own = [a.label for a in uow.authorities.list() if a.organization == organization]
            tally = uow.fleet.tally(own, now, edges) if own else []
            rates = self._rates(uow.fleet, set(own), now)
        return Overview(organization, now, _counts(tally), _horizons(tally, now, edges),
                        _months(tally, now, edges), rates)

    @staticmethod
    def _rates(fleet: FleetStatistics, own: set[str], now: datetime) -> Rates:
        issued, renewed, refused, failures = [], [], [], []
        for label, span in WINDOWS:
            since = now - span
            issued.append(RateCount(label, fleet.issued_since(sorted(own), since) if own else 0))
            events = fleet.recent_events(("certificate.renewed", "enrollment.refused"), since,
                                         EVENT_SCAN)
            capped = len(events) >= EVENT_SCAN
            mine = [e for e in events if _authority(e) in own]
            renewed.append(RateCount(label, _count(mine, "certificate.renewed"), capped))
            refusals = [e for e in mine if e.type == "enrollment.refused"]
            refused.append(RateCount(label, len(refusals), capped))
            failures.append(RateCount(label, sum(
                1 for e in refusals if e.payload.get("method") == RENEWAL_METHOD), capped))
        return Rates(tuple(issued), tuple(renewed), tuple(refused), tuple(failures))


def _counts(tally: Sequence[Tally]) -> tuple[CertificateCount, ...]:
    found: dict[tuple[str, str], int] = {}
    for t in tally:
        found[(t.profile, t.status)] = found.get((t.profile, t.status), 0) + t.count
    return tuple(CertificateCount(p, s, n) for (p, s), n in sorted(found.items()))


def _expiring(tally: Sequence[Tally], edges: Sequence[datetime], now: datetime,
              start: datetime, end: datetime) -> int:
    """Good certificates in the slices from `start` to `end` (each now or an edge): slice
    `b` runs from `edges[b - 1]` (from now for the first) to `edges[b]`."""
    return sum(t.count for t in tally if t.status == "good" and t.bucket < len(edges)
               and start <= (edges[t.bucket - 1] if t.bucket else now)
               and edges[t.bucket] <= end)


def _horizons(tally: Sequence[Tally], now: datetime,
              edges: Sequence[datetime]) -> tuple[ExpiryBucket, ...]:
    return tuple(ExpiryBucket(f"{d} days", now, now + timedelta(days=d),
                              _expiring(tally, edges, now, now, now + timedelta(days=d)))
                 for d in HORIZONS)


def _months(tally: Sequence[Tally], now: datetime,
            edges: Sequence[datetime]) -> tuple[ExpiryBucket, ...]:
    months = []
    for index in range(MONTHS):
        start, end = now + timedelta(days=30 * index), now + timedelta(days=30 * (index + 1))
        months.append(ExpiryBucket(start.strftime("%b %Y"), start, end,
                                   _expiring(tally, edges, now, start, end)))
    return tuple(months)


def _authority(event: StoredEvent) -> str:
    """The authority an event is about: named, or the issuer part of `authority:serial`."""
    payload = event.payload
    named = payload.get("authority") or str(payload.get("certificate") or "").partition(":")[0]
    return str(named or "")


def _count(events: Iterable[StoredEvent], kind: str) -> int:
    return sum(1 for e in events if e.type == kind)
