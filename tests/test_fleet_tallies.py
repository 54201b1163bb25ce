"""The fleet overview's counters (store.certificate_tallies) stay exact: after every step of a
seeded random sequence of issues, holds, releases, revocations, bulk changes and clock moves,
over two authorities and two profiles with notAfter and issue times on and around the
overview's edges, its numbers equal direct COUNTs over `certificates`, and the counter rows
equal the certificates grouped as they are kept. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.exc import OperationalError

from iotpki.app import PKI, build_pki
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.lifecycle.fleet_overview import HORIZONS, MONTHS, WINDOWS, FleetOverview
from iotpki.settings import Settings
from iotpki.store.certificate_tallies import HOUR, recount, utc_day
from iotpki.store.schema import authorities, certificate_tallies, certificates, issuance_tallies
from tests.api.conftest import OWN, issue_operational
from tests.servers import ManualClock

PROFILES = ("operational", "gateway")
STEPS = 60
RACE_ROUNDS = 40
# Offsets of notAfter from the overview's now: on, just before and just after each edge, and
# across the days around it (the counters keep days; the edges fall inside them).
EDGE_DAYS = (0, *HORIZONS, *(30 * (m + 1) for m in range(MONTHS)))
JITTER = (timedelta(0), timedelta(seconds=-1), timedelta(seconds=1), timedelta(hours=-5),
          timedelta(hours=5), timedelta(days=-1), timedelta(days=1), timedelta(hours=-23))


def direct_tallies(conn: Connection) -> tuple[Counter[tuple[object, ...]], Counter[tuple[object, ...]]]:
    """The certificates grouped as the counters keep them, counted directly."""
    c = certificates.c
    day = utc_day(conn.dialect.name)(c.not_after).label("day")
    by_day = select(c.authority_id, c.profile, c.status, day).subquery()
    kept = Counter({tuple(r[:4]): int(r[4]) for r in conn.execute(
        select(by_day, func.count()).group_by(*by_day.c))})
    hours = Counter[tuple[object, ...]]()
    for authority_id, issued_at in conn.execute(select(c.authority_id, c.issued_at)):
        hours[(authority_id, int(issued_at.timestamp()) // HOUR)] += 1
    return kept, hours


def stored_tallies(conn: Connection) -> tuple[Counter[tuple[object, ...]], Counter[tuple[object, ...]]]:
    t, i = certificate_tallies.c, issuance_tallies.c
    kept = Counter({(r[0], r[1], r[2], r[3]): int(r[4]) for r in conn.execute(
        select(t.authority_id, t.profile, t.status, t.expires_on, t.count)) if r[4]})
    hours = Counter({(r[0], r[1]): int(r[2]) for r in conn.execute(
        select(i.authority_id, i.issued_hour, i.count)) if r[2]})
    return kept, hours


def direct_overview(pki: PKI, labels: list[str], now: datetime) -> dict[str, object]:
    """What the overview must say, from COUNTs over `certificates`."""
    c = certificates.c
    with pki.database.engine.connect() as conn:
        own = c.authority_id.in_(select(authorities.c.id).where(authorities.c.label.in_(labels)))
        status = case((and_(c.status == "good", c.not_after < now), "expired"), else_=c.status)
        counts = {(p, s): int(n) for p, s, n in conn.execute(
            select(c.profile, status, func.count()).where(own).group_by(c.profile, status))}

        def count(*where: object) -> int:
            return int(conn.execute(select(func.count()).where(own, *where)).scalar_one())

        def good(start: datetime, end: datetime) -> int:
            return count(c.status == "good", c.not_after >= now, c.not_after >= start,
                         c.not_after < end)

        return {
            "counts": counts,
            "horizons": [good(now, now + timedelta(days=d)) for d in HORIZONS],
            "months": [good(now + timedelta(days=30 * m), now + timedelta(days=30 * (m + 1)))
                       for m in range(MONTHS)],
            "issued": [count(c.issued_at >= now - span) for _, span in WINDOWS],
        }


def shown(fleet: FleetOverview) -> dict[str, object]:
    overview = fleet.overview(OWN)
    return {
        "counts": {(c.profile, c.status): c.count for c in overview.counts if c.count},
        "horizons": [b.count for b in overview.horizons],
        "months": [b.count for b in overview.months],
        "issued": [r.count for r in overview.rates.issued],
    }


class Sequence:
    def __init__(self, pki: PKI, seed: int) -> None:
        self.pki = pki
        self.rng = random.Random(seed)
        self.clock = ManualClock(pki.clock.now())
        self.labels = sorted(a.label for a in pki.authorities.list() if a.organization == OWN)
        template = issue_operational(pki, "sensor-template")
        self.template = replace(template, key=template.key_facts)
        self.issued: list[CertificateRecord] = [template]

    def step(self) -> str:
        kind = self.rng.choice(("issue", "issue", "issue", "hold", "release", "revoke",
                                "bulk", "tick"))
        getattr(self, kind)()
        return kind

    def record(self) -> CertificateRecord:
        now, rng = self.clock.now(), self.rng
        not_after = now + timedelta(days=rng.choice(EDGE_DAYS)) + rng.choice(JITTER)
        issued_at = now - rng.choice([span for _, span in WINDOWS]) + rng.choice(JITTER[:5])
        return replace(self.template, authority=rng.choice(self.labels),
                       serial=rng.getrandbits(63), fingerprint=f"{rng.getrandbits(256):064x}",
                       profile=rng.choice(PROFILES), not_after=not_after,
                       issued_at=min(issued_at, now))

    def issue(self) -> None:
        batch = [self.record() for _ in range(self.rng.randint(1, 4))]
        self.add(self.pki, batch)
        self.issued += batch

    @staticmethod
    def add(pki: PKI, batch: list[CertificateRecord]) -> None:
        with pki.database.unit_of_work() as uow:
            if len(batch) == 1:
                uow.certificates.add(batch[0])
            else:
                uow.certificates.add_many(batch)
            uow.commit()

    def _pick(self, *statuses: CertificateStatus) -> CertificateRecord | None:
        found = [r for r in (self.pki.certificates.get(r.authority, r.serial)
                             for r in self.issued) if r is not None and r.status in statuses]
        return self.rng.choice(found) if found else None

    def hold(self) -> None:
        if (record := self._pick(CertificateStatus.GOOD)) is not None:
            self.pki.revocation.revoke(record.authority, record.serial,
                                       x509.ReasonFlags.certificate_hold, "test")

    def release(self) -> None:
        if (record := self._pick(CertificateStatus.HELD)) is not None:
            self.pki.revocation.release(record.authority, record.serial, "test")

    def revoke(self) -> None:
        if (record := self._pick(CertificateStatus.GOOD, CertificateStatus.HELD)) is not None:
            self.pki.revocation.revoke(record.authority, record.serial,
                                       x509.ReasonFlags.key_compromise, "test")

    def bulk(self) -> None:
        reason = self.rng.choice((x509.ReasonFlags.certificate_hold,
                                  x509.ReasonFlags.superseded))
        self.pki.revocation.revoke_matching(CertificateQuery(
            organization=OWN, profile=self.rng.choice(PROFILES),
            authority=self.rng.choice((None, *self.labels)), limit=None), reason, "test")

    def tick(self) -> None:
        self.clock.advance(self.rng.choice((timedelta(seconds=1), timedelta(hours=3),
                                            timedelta(hours=13), timedelta(days=7))))


def test_the_overview_equals_direct_counts_after_every_step(demo_pki: PKI) -> None:
    sequence = Sequence(demo_pki, seed=18)
    fleet = FleetOverview(demo_pki.database.read_unit_of_work, sequence.clock)
    seen = Counter[str]()
    for n in range(STEPS):
        kind = sequence.step()
        seen[kind] += 1
        now = sequence.clock.now()
        assert shown(fleet) == direct_overview(demo_pki, sequence.labels, now), (n, kind)
        with demo_pki.database.engine.connect() as conn:
            assert stored_tallies(conn) == direct_tallies(conn), (n, kind)
    assert all(seen[kind] for kind in ("issue", "hold", "release", "revoke", "bulk", "tick"))


def test_certificates_on_every_edge_are_counted_on_the_right_side(demo_pki: PKI) -> None:
    """notAfter exactly at now and at each edge, and a second either side of them."""
    sequence = Sequence(demo_pki, seed=5)
    now = sequence.clock.now()
    records = [replace(sequence.record(), not_after=now + timedelta(days=d) + jitter)
               for d in EDGE_DAYS for jitter in JITTER[:3]]
    with demo_pki.database.unit_of_work() as uow:
        uow.certificates.add_many(records)
        uow.commit()
    fleet = FleetOverview(demo_pki.database.read_unit_of_work, sequence.clock)
    assert shown(fleet) == direct_overview(demo_pki, sequence.labels, now)


def test_two_nodes_changing_the_same_counters_in_opposite_orders_both_commit(
        demo_pki: PKI, settings: Settings) -> None:
    """Two nodes (two transactions at once on PostgreSQL) each add certificates whose counter
    rows the other adds in the opposite order, and hold some: the counters are written last,
    in key order, so neither waits for the other in a cycle (no deadlock), and they stay
    exact."""
    other = build_pki(settings, migrate=False)
    try:
        sequence = Sequence(demo_pki, seed=21)
        first, second = sequence.record(), sequence.record()
        first = replace(first, authority=sequence.labels[0], profile=PROFILES[0])
        second = replace(second, authority=sequence.labels[1], profile=PROFILES[1])
        errors: list[BaseException] = []

        def run(node: PKI, order: tuple[CertificateRecord, ...], seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(RACE_ROUNDS):
                    made = [replace(r, serial=rng.getrandbits(63),
                                    fingerprint=f"{rng.getrandbits(256):064x}") for r in order]
                    with node.database.unit_of_work() as uow:
                        for record in made:
                            uow.certificates.add(record)
                        uow.commit()
                    node.revocation.revoke(made[0].authority, made[0].serial,
                                           x509.ReasonFlags.certificate_hold, "test")
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(demo_pki, (first, second), 1)),
                   threading.Thread(target=run, args=(other, (second, first), 2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with demo_pki.database.engine.connect() as conn:
            assert stored_tallies(conn) == direct_tallies(conn)
    finally:
        other.close()


def test_a_writer_takes_its_counter_row_locks_in_key_order(demo_pki: PKI) -> None:
    """What keeps concurrent writers from deadlocking on PostgreSQL: a transaction that adds
    certificates counted in rows K2 then K1 (K1 < K2) locks K1 first. With K2 held by
    another transaction, the writer waits holding K1."""
    engine = demo_pki.database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    sequence = Sequence(demo_pki, seed=9)
    first = replace(sequence.record(), authority=sequence.labels[0])
    low, high = (replace(first, profile=p) for p in sorted(PROFILES))

    def fresh(record: CertificateRecord) -> CertificateRecord:
        return replace(record, serial=sequence.rng.getrandbits(63),
                       fingerprint=f"{sequence.rng.getrandbits(256):064x}")

    with demo_pki.database.unit_of_work() as uow:  # both counter rows exist
        uow.certificates.add_many([fresh(low), fresh(high)])
        uow.commit()
    t = certificate_tallies.c
    with engine.connect() as conn:
        authority_id = int(conn.execute(select(authorities.c.id).where(
            authorities.c.label == first.authority)).scalar_one())

    def row(profile: str) -> Any:
        return select(t.count).where(t.authority_id == authority_id, t.profile == profile,
                                     t.status == "good")

    with engine.connect() as holder:
        holder.execute(row(high.profile).with_for_update())  # K2, until the rollback
        writer = threading.Thread(target=Sequence.add, args=(demo_pki, [fresh(high),
                                                                        fresh(low)]))
        writer.start()
        locked = False
        deadline = time.monotonic() + 10
        while not locked and time.monotonic() < deadline:
            with engine.connect() as probe:
                try:
                    probe.execute(row(low.profile).with_for_update(nowait=True))
                except OperationalError:
                    locked = True
                probe.rollback()
            time.sleep(0.05)
        holder.rollback()
    writer.join()
    assert locked, "the writer did not hold K1 while it waited for K2"


def test_a_recount_rebuilds_drifted_counters_from_the_certificates(demo_pki: PKI) -> None:
    """SQL written by hand (or a node older than migration 0023) changes certificates past
    the ledger: `recount` (`iotpki doctor --recount-fleet`) makes the counters exact again
    and says whether they had drifted."""
    pki = demo_pki
    for _ in range(3):
        issue_operational(pki)
    with pki.database.engine.begin() as conn:
        assert recount(conn) is False  # the ledger kept them exact
        conn.execute(certificates.update().where(certificates.c.status == "good").values(
            status="revoked"))  # past the ledger
        assert stored_tallies(conn) != direct_tallies(conn)
        assert recount(conn) is True
        assert stored_tallies(conn) == direct_tallies(conn)
        assert recount(conn) is False


def test_the_overview_reads_one_snapshot(demo_pki: PKI) -> None:
    """Its counters and partial-day counts come from several statements: on PostgreSQL the
    console's unit reads them all in one repeatable-read snapshot (read committed would let
    a commit in between make the slices disagree)."""
    with demo_pki.database.snapshot_unit_of_work() as uow:
        level = uow._connection.exec_driver_sql(
            "SHOW transaction_isolation" if demo_pki.database.dialect == "postgresql"
            else "PRAGMA read_uncommitted").scalar()
    assert level == ("repeatable read" if demo_pki.database.dialect == "postgresql" else 0)
    with demo_pki.database.read_unit_of_work() as uow:  # others keep the default
        if demo_pki.database.dialect == "postgresql":
            assert uow._connection.exec_driver_sql(
                "SHOW transaction_isolation").scalar() == "read committed"
