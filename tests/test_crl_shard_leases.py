"""CRL shard builds spread over nodes by lease (`core.revocation.crl_shards`), on both
databases: two nodes sharing one database build disjoint shards, never one shard twice;
a lease a node never gave back ends; a revocation makes only its own shard due."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.crl_shards import CRLShardBuilds
from iotpki.core.revocation.status import CRLKind, PublishedCRL
from iotpki.settings import Settings
from tests.factories import domain_uri, make_csr
from tests.servers import ManualClock

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
WINDOW = timedelta(days=7)
LEASE = timedelta(minutes=5)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def nodes(settings: Settings, clock: ManualClock) -> Iterator[tuple[PKI, PKI]]:
    """Two nodes on one database, started after the operational CA was sharded by week."""
    setup = build_pki(settings, clock=clock)
    try:
        create_demo_hierarchy(setup)
        setup.authorities.set_crl_sharding(CA, WINDOW, "test")
    finally:
        setup.close()
    first, second = (build_pki(settings, clock=clock, migrate=False) for _ in range(2))
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def builds(node: PKI, holder: str) -> CRLShardBuilds:
    return CRLShardBuilds(node.database.unit_of_work, node.crls, node.clock, holder, LEASE)


def issue_in_weeks(node: PKI, weeks: list[int]) -> list[Issued]:
    issued = []
    for week in weeks:
        csr, _ = make_csr(f"device-{week}", [domain_uri(DOMAIN)])
        outcome = node.issuance.issue(IssuanceRequest(
            CA, "operational", csr, "test", not_after=node.clock.now() + timedelta(weeks=week)))
        assert isinstance(outcome, Issued), outcome
        issued.append(outcome)
    return issued


def shards(published: list[PublishedCRL], kind: CRLKind = CRLKind.FULL) -> list[int | None]:
    return [c.info.shard for c in published if c.info.kind is kind]


def test_a_shard_whose_lease_another_node_holds_is_left_to_it(
        nodes: tuple[PKI, PKI], clock: ManualClock) -> None:
    first, second = nodes
    issued = issue_in_weeks(first, [2, 5, 9, 13])
    all_shards = {i.record.crl_shard for i in issued}
    busy = issued[0].record.crl_shard
    assert busy is not None and len(all_shards) == 4
    with first.database.unit_of_work() as uow:  # the first node is building it
        assert uow.crl_shards.claim(CA, busy, "first", clock.now(), clock.now() + LEASE)
        uow.commit()
    by_second = shards(builds(second, "second").run_once())
    assert sorted(by_second) == sorted(all_shards - {busy})  # type: ignore[type-var]
    with first.database.unit_of_work() as uow:
        uow.crl_shards.release(CA, busy, "first")
        uow.commit()
    assert shards(builds(first, "first").run_once()) == [busy]
    assert builds(first, "first").run_once() == []  # nothing due any more, on either node
    assert builds(second, "second").run_once() == []


def test_a_lease_never_given_back_ends(nodes: tuple[PKI, PKI], clock: ManualClock) -> None:
    first, second = nodes
    [leaf] = issue_in_weeks(first, [3])
    shard = leaf.record.crl_shard
    assert shard is not None
    with first.database.unit_of_work() as uow:  # the first node died mid-build
        assert uow.crl_shards.claim(CA, shard, "first", clock.now(), clock.now() + LEASE)
        uow.commit()
    assert builds(second, "second").run_once() == []
    clock.advance(LEASE)
    assert shards(builds(second, "second").run_once()) == [shard]


def test_two_nodes_at_once_build_each_shard_once(nodes: tuple[PKI, PKI]) -> None:
    first, second = nodes
    issue_in_weeks(first, [1, 2, 3, 4, 5, 6, 7, 8])
    results: dict[str, list[PublishedCRL]] = {}
    failures: list[BaseException] = []

    def run(node: PKI, holder: str) -> None:
        try:
            results[holder] = builds(node, holder).run_once()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(node, holder))
               for node, holder in ((first, "node-a"), (second, "node-b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    built = Counter(shards(results["node-a"]) + shards(results["node-b"]))
    assert len(built) == 8 and set(built.values()) == {1}, built
    with first.database.unit_of_work() as uow:
        numbers = {s.shard: uow.crls.latest_info(CA, CRLKind.FULL, s.shard)
                   for s in uow.crl_shards.live(first.clock.now())}
    assert all(info is not None and info.number == 1 for info in numbers.values())


def test_a_revocation_makes_only_its_own_shard_due(
        nodes: tuple[PKI, PKI], clock: ManualClock) -> None:
    first, _ = nodes
    near, far = issue_in_weeks(first, [2, 6])
    node = builds(first, "first")
    assert len(shards(node.run_once())) == 2
    first.revocation.revoke(CA, near.record.serial, x509.ReasonFlags.key_compromise, "test")
    clock.advance(first.crls.policy.debounce)
    published = node.run_once()
    assert shards(published, CRLKind.DELTA) == [near.record.crl_shard]
    assert far.record.crl_shard not in {c.info.shard for c in published}


@pytest.fixture
def legacy(nodes: tuple[PKI, PKI], settings: Settings, clock: ManualClock) -> Issued:
    """A certificate of the CA in no shard: issued while sharding was off."""
    other = build_pki(settings, clock=clock, migrate=False)
    try:
        other.authorities.set_crl_sharding(CA, None, "test")
        [issued] = issue_in_weeks(other, [30])
        other.authorities.set_crl_sharding(CA, WINDOW, "test")
    finally:
        other.close()
    assert issued.record.crl_shard is None
    return issued


def test_the_own_crl_of_a_sharded_ca_follows_its_certificates_in_no_shard(
        nodes: tuple[PKI, PKI], legacy: Issued, clock: ManualClock) -> None:
    first, _ = nodes
    [leaf] = issue_in_weeks(first, [4])
    node = builds(first, "first")
    node.run_once()
    first.crls.publish(CA, [CRLKind.FULL, CRLKind.DELTA])
    first.revocation.revoke(CA, leaf.record.serial, x509.ReasonFlags.key_compromise, "test")
    clock.advance(first.crls.policy.full_after_change)
    assert shards(node.run_once()) == [leaf.record.crl_shard]
    # The CA's own CRL covers no shard's certificate: that revocation does not make it due.
    assert first.crls.publish_if_due(CA, node.own_marks[CA]) == []
    assert first.crls.publish(CA) == []  # nor when decided under its number lock
    first.revocation.revoke(CA, legacy.record.serial, x509.ReasonFlags.superseded, "test")
    clock.advance(first.crls.policy.full_after_change)
    node.run_once()
    published = first.crls.publish_if_due(CA, node.own_marks[CA])
    full = next(c for c in published if c.info.kind is CRLKind.FULL)
    assert {r.serial_number for r in x509.load_der_x509_crl(full.der)} == {legacy.record.serial}
