"""The fleet at a glance, per organization: certificates counted by profile and status (good,
on hold, revoked, expired), how many expire soon (the next 7, 30 and 90 days and each of the
next 12 months), and the recent issuance, renewal and refusal rates.

Counts come from the store's indexes (`FleetStatistics`), never from reading certificates:
an organization with a million of them is counted in one index scan. Renewals and refused
enrollments are read from the event outbox, newest first, up to `EVENT_SCAN` events per
window: beyond that the figure is shown as a lower bound (`RateCount.capped`).
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


class FleetStatistics(Protocol):
    def certificate_counts(self, authorities: Sequence[str], now: datetime) -> list[CertificateCount]:
        """Certificates of these authorities by profile and status (`EXPIRED` for good ones
        whose notAfter is before `now`)."""
        ...

    def expiring(self, authorities: Sequence[str], start: datetime, end: datetime) -> int:
        """Good certificates of these authorities with start <= notAfter < end."""
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


class FleetOverview:
    def __init__(self, uow: Callable[[], FleetUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def overview(self, organization: str) -> Overview:
        now = self._clock.now()
        with self._uow() as uow:
            own = [a.label for a in uow.authorities.list() if a.organization == organization]
            fleet = uow.fleet
            counts = tuple(fleet.certificate_counts(own, now)) if own else ()
            horizons = tuple(ExpiryBucket(f"{d} days", now, now + timedelta(days=d),
                                          fleet.expiring(own, now, now + timedelta(days=d))
                                          if own else 0) for d in HORIZONS)
            months = tuple(_month(fleet, own, now, i) for i in range(MONTHS))
            rates = self._rates(fleet, set(own), now)
        return Overview(organization, now, counts, horizons, months, rates)

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


def _month(fleet: FleetStatistics, own: Sequence[str], now: datetime, index: int) -> ExpiryBucket:
    start, end = now + timedelta(days=30 * index), now + timedelta(days=30 * (index + 1))
    return ExpiryBucket(start.strftime("%b %Y"), start, end,
                        fleet.expiring(own, start, end) if own else 0)


def _authority(event: StoredEvent) -> str:
    """The authority an event is about: named, or the issuer part of `authority:serial`."""
    payload = event.payload
    named = payload.get("authority") or str(payload.get("certificate") or "").partition(":")[0]
    return str(named or "")


def _count(events: Iterable[StoredEvent], kind: str) -> int:
    return sum(1 for e in events if e.type == kind)
