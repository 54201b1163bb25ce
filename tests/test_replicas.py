"""A read replica behind a node (issue 20): on a real topology of our own (a primary, a
synchronous standby, an asynchronous replica: tests/topology.py), OCSP, CRL serving and the
API's listings read from the replica while it is fresh, from the primary when it lags, and
an OCSP answer asked for once the lag bound has passed since a revoking commit shows the
revocation either way (with the default bound and the node's poll: within 1 s)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import create_engine, text

from iotpki.app import PKI, build_pki
from iotpki.background import RevocationWorker
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.errors import ConfigurationError
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.status import CRLKind
from iotpki.settings import Settings
from iotpki.store.database import Database
from iotpki.store.ids import IdCache
from iotpki.store.unit_of_work import SQLUnitOfWork
from tests.conftest import key_settings
from tests.factories import domain_uri, make_csr
from tests.servers import PASSPHRASE
from tests.topology import Topology, running_topology

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with running_topology() as started:
        yield started


@pytest.fixture(scope="module")
def nodes(topology: Topology, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[tuple[PKI, PKI]]:
    """(writer, reader): two nodes of one PKI; the reader has the replica as read URL."""
    os.environ["IOTPKI_CA_PASSPHRASE"] = PASSPHRASE
    settings = Settings(data_dir=tmp_path_factory.mktemp("replicas") / "data",
                        database_url=topology.primary.url, public_url="http://pki.test:8080",
                        **key_settings(request))
    writer = build_pki(settings)
    create_demo_hierarchy(writer)
    reader = build_pki(dataclasses.replace(settings, database_read_url=topology.replica.url),
                       migrate=False)
    try:
        yield writer, reader
    finally:
        reader.close()
        writer.close()


def issue(pki: PKI, name: str) -> Issued:
    csr, _ = make_csr(name, [domain_uri(DOMAIN)])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(outcome, Issued), outcome
    return outcome


def issue_and_replicate(writer: PKI, reader: PKI, name: str) -> Issued:
    """Issued by the writer and replayed by the replica. A reader may trail the primary by
    its lag bound, so a certificate issued a moment ago may be unknown to it: a test that
    asks about one first waits until the replica itself holds the record."""
    issued = issue(writer, name)
    router = reader.database.replicas
    assert router is not None
    deadline = time.monotonic() + 15
    while True:
        with SQLUnitOfWork(router.replica, IdCache(), read_only=True) as uow:
            if uow.revocation.lookup(CA, issued.record.serial) is not None:
                return issued
        assert time.monotonic() < deadline, "the replica never replayed the issuance"
        time.sleep(0.02)


def ocsp_status(pki: PKI, issued: Issued, nonce: bool = False) -> ocsp.OCSPCertStatus:
    """The reader's answer; with a nonce it is signed fresh (no pre-signed cache)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, issued.chain[0],
                                                        hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), False)
    answer = pki.ocsp.respond(CA, builder.build().public_bytes(Encoding.DER))
    return ocsp.load_der_ocsp_response(answer.der).certificate_status


def seconds_until_revoked(pki: PKI, issued: Issued, committed: float, nonce: bool) -> float:
    """Bounded loosely: a node that never shows the revocation fails, a slow machine not."""
    while ocsp_status(pki, issued, nonce) is not ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() - committed < 15, "the revocation never reached OCSP"
        time.sleep(0.02)
    return time.monotonic() - committed


def test_the_standby_is_synchronous_and_the_replica_streams(topology: Topology) -> None:
    engine = create_engine(topology.primary.url)
    try:
        with engine.connect() as conn:
            states = dict(conn.execute(text(
                "SELECT application_name, sync_state FROM pg_stat_replication")).all())
            names = conn.execute(text("SHOW synchronous_standby_names")).scalar()
    finally:
        engine.dispose()
    assert states == {"standby": "sync", "replica": "async"}
    assert names == "standby"


def test_reads_go_to_the_replica_and_writes_to_the_primary(nodes: tuple[PKI, PKI]) -> None:
    writer, reader = nodes
    router = reader.database.replicas
    assert router is not None
    issued = issue_and_replicate(writer, reader, "routed")
    before = router.replica_reads
    assert ocsp_status(reader, issued, nonce=True) is ocsp.OCSPCertStatus.GOOD
    listed = reader.listings.find(CertificateQuery(authority=CA, subject_contains="routed"))
    assert [r.serial for r in listed] == [issued.record.serial]
    assert router.replica_reads > before
    with reader.database.replica_unit_of_work() as uow:  # the replica refuses writes
        in_recovery = uow._connection.execute(text("SELECT pg_is_in_recovery()")).scalar()
    assert in_recovery is True


@pytest.mark.parametrize("nonce", [True, False], ids=["fresh", "pre-signed"])
def test_a_revocation_shows_in_ocsp_from_the_replica_once_the_lag_bound_passed(
        nodes: tuple[PKI, PKI], nonce: bool) -> None:
    """The bound, without timing the machine: an answer asked for `max_lag` seconds after
    the revoking commit is revoked, from the replica or the primary; a pre-signed answer
    once the node polled the revocation counters after that (its worker polls every
    0.25 s: with the default 0.5 s bound, a revocation shows within 1 s; bench/scale.py
    measures it)."""
    writer, reader = nodes
    router = reader.database.replicas
    assert router is not None
    issued = issue_and_replicate(writer, reader, f"revoked-{nonce}")
    reader.ocsp.refresh_changes()
    assert ocsp_status(reader, issued, nonce) is ocsp.OCSPCertStatus.GOOD  # cached if it may
    writer.revocation.revoke(CA, issued.record.serial, x509.ReasonFlags.key_compromise, "test")
    time.sleep(router.max_lag)
    if not nonce:
        reader.ocsp.refresh_changes()  # what the node's RevocationWorker does every 0.25 s
    assert ocsp_status(reader, issued, nonce) is ocsp.OCSPCertStatus.REVOKED


def test_the_node_worker_brings_a_revocation_to_ocsp_from_the_replica(
        nodes: tuple[PKI, PKI]) -> None:
    writer, reader = nodes
    issued = issue_and_replicate(writer, reader, "worker")
    worker = RevocationWorker(reader.ocsp, reader.crls, reader.crl_distribution, lambda: None)
    worker.start()
    try:
        assert ocsp_status(reader, issued) is ocsp.OCSPCertStatus.GOOD
        writer.revocation.revoke(CA, issued.record.serial,
                                 x509.ReasonFlags.key_compromise, "test")
        seconds_until_revoked(reader, issued, time.monotonic(), nonce=False)
    finally:
        worker.stop()


def test_a_lagging_replica_is_left_for_the_primary_and_used_again_once_it_caught_up(
        topology: Topology, nodes: tuple[PKI, PKI]) -> None:
    writer, reader = nodes
    router = reader.database.replicas
    assert router is not None
    issued = issue_and_replicate(writer, reader, "lagging")
    topology.pause_replay(topology.replica)
    try:
        writer.revocation.revoke(CA, issued.record.serial,
                                 x509.ReasonFlags.key_compromise, "test")
        # The replica never replays the revocation, yet OCSP shows it: from the primary.
        time.sleep(router.max_lag)
        assert ocsp_status(reader, issued, nonce=True) is ocsp.OCSPCertStatus.REVOKED
        assert router.engine() is router.primary
        with SQLUnitOfWork(router.replica, IdCache(), read_only=True) as uow:
            on_replica = uow.revocation.lookup(CA, issued.record.serial)
        assert on_replica is not None and on_replica.status is CertificateStatus.GOOD
    finally:
        topology.resume_replay(topology.replica)
    deadline = time.monotonic() + 10
    while router.engine() is not router.replica:
        assert time.monotonic() < deadline, "the replica was never used again"
        time.sleep(0.05)
    assert ocsp_status(reader, issued, nonce=True) is ocsp.OCSPCertStatus.REVOKED


def test_crls_are_served_from_the_replica(nodes: tuple[PKI, PKI]) -> None:
    writer, reader = nodes
    writer.crls.publish(CA)
    deadline = time.monotonic() + 5
    newest = writer.crls.latest(CA, CRLKind.FULL, fresh=True)
    assert newest is not None
    while reader.crl_distribution.current(CA).info.number < newest.info.number:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_read_url_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="IOTPKI_DATABASE_READ_URL"):
        Database(f"sqlite:///{tmp_path / 'x.db'}",
                 read_url="postgresql+psycopg://postgres@127.0.0.1:1/iotpki")


def test_the_read_url_comes_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_environment(tmp_path, env={
        "IOTPKI_DATABASE_URL": "postgresql+psycopg://a/b",
        "IOTPKI_DATABASE_READ_URL": "postgresql+psycopg://r/b",
        "IOTPKI_DATABASE_READ_MAX_LAG": "0.25"})
    assert settings.database_read_url == "postgresql+psycopg://r/b"
    assert settings.database_read_max_lag == 0.25
    assert Settings.from_handoff(settings.handoff()) == settings
