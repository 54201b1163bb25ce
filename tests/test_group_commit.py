"""Group commit (issue 21, `store.group_commit`): the write units of work waiting at one
moment share one COMMIT, each returns only after the COMMIT that made its work durable, a
failing unit leaves the others' work alone. The kill -9 test of a serving process is in
tests/test_crash_durability.py."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, event, text

from iotpki.app import PKI, build_pki
from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.events import Event
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.store.group_commit import GroupCommit, GroupCommitError
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


@pytest.fixture
def grouped(demo_pki: PKI, settings: Settings) -> Iterator[PKI]:
    """A second PKI over the demo database whose writers use group commit (as `iotpki
    serve` workers do)."""
    pki = build_pki(settings, migrate=False, group_commit=True)
    try:
        yield pki
    finally:
        pki.close()


def _group(pki: PKI) -> GroupCommit:
    group = pki.database._group
    assert group is not None
    return group


def _written(pki: PKI) -> list[str]:
    """The actors of the tests' audit entries in chain order, once the chain verified."""
    _, problems = pki.audit.problems()
    assert problems == []
    return [e.record.actor for e in pki.audit.entries(limit=None)
            if e.record.action == "test.group"]


def test_concurrent_issuances_are_stored_before_they_return(grouped: PKI,
                                                             demo_pki: PKI) -> None:
    """Every issue() returns after its certificate is committed: another connection (the
    demo PKI's own) finds it at once; the audit chain verifies afterwards."""
    errors: list[BaseException] = []

    def issue(worker: int) -> None:
        try:
            for index in range(6):
                csr, _ = make_csr(f"group-{worker}-{index}", [domain_uri(DOMAIN)])
                outcome = grouped.issuance.issue(IssuanceRequest(CA, "operational", csr, "t"))
                assert isinstance(outcome, Issued), outcome
                stored = demo_pki.certificates.get_by_fingerprint(outcome.record.fingerprint)
                assert stored.serial == outcome.record.serial
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    checked, problems = demo_pki.audit.problems()
    assert checked >= 36 and problems == []


def _a_then_b_and_c_waiting(grouped: PKI, write: Callable[[str], None]) -> None:
    """Unit A writes and holds the group's turn until `write("B")` and `write("C")`, each in
    its own thread, are both waiting behind it; then A ends and B and C join its group."""
    group = _group(grouped)
    others = [threading.Thread(target=write, args=(name,)) for name in ("B", "C")]
    with grouped.database.unit_of_work() as first:
        append_audit(first.audit, grouped.clock.now(), AuditRecord(
            "test.group", "success", "A", "-", {}))
        first.commit()
        for thread in others:
            thread.start()
        with group._state:
            assert group._state.wait_for(lambda: group._waiting == 2, timeout=120)
    for thread in others:
        thread.join()


def test_waiting_writers_share_one_commit(grouped: PKI) -> None:
    """A holds the turn while B and C queue behind it; A, B and C commit together: one
    COMMIT for three units, each unit's audit entry stored."""
    if grouped.database.dialect != "sqlite":
        pytest.skip("the statement trace is SQLite's")
    statements: list[str] = []
    grouped.database.engine.dispose()

    def trace(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]

    event.listen(grouped.database.engine, "connect", trace)
    uow = grouped.database.unit_of_work

    def write(name: str) -> None:
        with uow() as unit:
            append_audit(unit.audit, grouped.clock.now(), AuditRecord(
                "test.group", "success", name, "-", {}))
            unit.commit()

    _a_then_b_and_c_waiting(grouped, write)
    commits = [s for s in statements if s.strip().upper() == "COMMIT"]
    assert len(commits) == 1
    # One audit-head move for the group: the first unit reads the head, each moves it in
    # memory, one UPDATE before the COMMIT.
    head_reads = [s for s in statements if "FROM audit_head" in s]
    head_moves = [s for s in statements if s.lstrip().upper().startswith("UPDATE AUDIT_HEAD")]
    assert (len(head_reads), len(head_moves)) == (1, 1)
    # B's and C's SAVEPOINTs: A's work was the transaction's first, undone by a ROLLBACK.
    assert len([s for s in statements if s.lstrip().upper().startswith("SAVEPOINT")]) == 2
    assert set(_written(grouped)) == {"A", "B", "C"}


def test_a_failing_unit_leaves_the_group_alone(grouped: PKI) -> None:
    """A unit that raises rolls back to its savepoint; the next unit's work commits."""
    uow = grouped.database.unit_of_work
    with pytest.raises(ValueError), uow() as unit:
        append_audit(unit.audit, grouped.clock.now(), AuditRecord(
            "test.group", "success", "lost", "-", {}))
        raise ValueError("refused")
    with uow() as unit:
        append_audit(unit.audit, grouped.clock.now(), AuditRecord(
            "test.group", "success", "kept", "-", {}))
        unit.commit()
    assert set(_written(grouped)) == {"kept"}


def test_a_unit_rolled_back_inside_a_group_leaves_the_chain_intact(grouped: PKI) -> None:
    """B appends to the group's audit head and then fails; the head the group shares goes
    back to where it was when B began, so C's entry follows A's and the chain verifies."""
    uow = grouped.database.unit_of_work

    def write(name: str) -> None:
        with uow() as unit:
            append_audit(unit.audit, grouped.clock.now(), AuditRecord(
                "test.group", "success", name, "-", {}))
            unit.events.add(Event("test.group", grouped.clock.now(), {"name": name}))
            if name == "B":
                raise ValueError("refused after appending")
            unit.commit()

    def run(name: str) -> None:
        with contextlib.suppress(ValueError):
            write(name)

    _a_then_b_and_c_waiting(grouped, run)
    assert _written(grouped) == ["A", "C"]
    with grouped.database.read_unit_of_work() as unit:  # B's event went with B's savepoint
        payloads = unit._connection.execute(text(
            "SELECT payload FROM events WHERE type = 'test.group' ORDER BY id")).scalars()
        assert [json.loads(p)["name"] for p in payloads] == ["C"]


def test_a_first_unit_failing_leaves_the_units_waiting_behind_it_alone(grouped: PKI) -> None:
    """A, the first unit of its transaction (no SAVEPOINT), appends to the audit head and
    fails while B and C wait: the transaction is rolled back whole, B and C commit in a new
    one, and the chain verifies."""
    group = _group(grouped)
    uow = grouped.database.unit_of_work

    def write(name: str) -> None:
        with uow() as unit:
            append_audit(unit.audit, grouped.clock.now(), AuditRecord(
                "test.group", "success", name, "-", {}))
            unit.commit()

    others = [threading.Thread(target=write, args=(name,)) for name in ("B", "C")]
    with pytest.raises(ValueError), uow() as first:
        append_audit(first.audit, grouped.clock.now(), AuditRecord(
            "test.group", "success", "A", "-", {}))
        for thread in others:
            thread.start()
        with group._state:
            assert group._state.wait_for(lambda: group._waiting == 2, timeout=120)
        raise ValueError("refused after appending")
    for thread in others:
        thread.join()
    assert set(_written(grouped)) == {"B", "C"}


def test_a_failing_deferred_write_fails_the_group_and_commits_nothing(grouped: PKI) -> None:
    """The writes deferred to the group's end go with its COMMIT (on PostgreSQL in one
    pipeline): one that fails leaves the group uncommitted, its unit raises, nothing of it
    is stored, and the next unit commits on a connection made anew."""
    uow = grouped.database.unit_of_work

    def failing(conn: Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(GroupCommitError), uow() as unit:
        append_audit(unit.audit, grouped.clock.now(), AuditRecord(
            "test.group", "success", "lost", "-", {}))
        _group(grouped).defer("failing", failing)
        unit.commit()
    with uow() as unit:
        append_audit(unit.audit, grouped.clock.now(), AuditRecord(
            "test.group", "success", "kept", "-", {}))
        unit.commit()
    assert set(_written(grouped)) == {"kept"}


def test_a_transaction_a_statement_failed_in_is_never_reported_stored(grouped: PKI) -> None:
    """PostgreSQL ends a transaction in which a statement failed with ROLLBACK, not an
    error. A unit that swallowed such a failure and committed, with no deferred write to
    fail in the pipeline, must still learn that nothing was stored."""
    if grouped.database.dialect != "postgresql":
        pytest.skip("SQLite keeps a transaction usable after a failed statement")
    nonce = b"\x01" * 16
    with pytest.raises(GroupCommitError), grouped.database.unit_of_work() as unit:
        assert unit.cmp.note_nonce(nonce, grouped.clock.now())
        with contextlib.suppress(Exception):
            unit._conn.exec_driver_sql("SELECT * FROM no_such_table")  # type: ignore[union-attr]
        unit.commit()
    with grouped.database.unit_of_work() as unit:
        assert unit.cmp.note_nonce(nonce, grouped.clock.now())  # the first was not stored
        unit.commit()
