"""Failover under load (issue 20): two nodes issue through `issue_many` on a primary with a
synchronous standby; the primary is killed (-9) mid-storm and the standby promoted. The
nodes' URL names both hosts (`target_session_attrs=read-write`), so they find the new
primary by themselves (pool pre-ping). Every certificate a client received is on the new
primary, no serial is there twice, and the audit chain is intact.

The topology is this module's own: the test destroys its primary."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.settings import Settings
from iotpki.store.schema import certificates
from tests.conftest import key_settings
from tests.servers import PASSPHRASE
from tests.storm import IssuanceStorm
from tests.topology import Topology, running_topology


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with running_topology() as started:
        yield started


@pytest.fixture
def nodes(topology: Topology, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[list[PKI]]:
    os.environ["IOTPKI_CA_PASSPHRASE"] = PASSPHRASE
    settings = Settings(data_dir=tmp_path / "data",
                        database_url=topology.multi_host_url(),
                        public_url="http://pki.test:8080", **key_settings(request))
    first = build_pki(settings)
    create_demo_hierarchy(first)
    # The second node as `iotpki serve` workers run: writers share a group commit, whose
    # connection outlives a pool checkout (no pre-ping): it must be redone after the kill.
    started = [first, build_pki(settings, migrate=False, group_commit=True)]
    try:
        yield started
    finally:
        for node in started:
            node.close()


def test_no_received_certificate_is_lost_when_the_primary_dies_mid_storm(
        topology: Topology, nodes: list[PKI]) -> None:
    storm = IssuanceStorm(nodes, batch=10).start()
    try:
        storm.wait_received_after(0.0, 60)  # the storm is under way on the primary
        topology.kill_primary()
        killed = time.monotonic()  # whatever is received from now on, the standby issued
        topology.promote_standby()
        storm.wait_received_after(killed, 60)  # the nodes issue again, on the new primary
        storm.wait_every_node_after(killed)
    finally:
        storm.stop()
    received = storm.received
    assert storm.failures, "the kill interrupted no batch: nothing was tested"

    engine = create_engine(topology.standby.url)
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(select(certificates.c.fingerprint)).scalars())
            duplicated = conn.execute(
                select(certificates.c.authority_id, certificates.c.serial)
                .group_by(certificates.c.authority_id, certificates.c.serial)
                .having(func.count() > 1)).all()
    finally:
        engine.dispose()
    missing = [r for r in received if r.fingerprint not in stored]
    assert missing == []
    assert duplicated == []
    assert len({r.serial for r in received}) == len(received)
    checked, problems = nodes[0].audit.problems()
    assert problems == [] and checked >= len(received)
