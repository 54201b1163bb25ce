"""`AuditTrail` (core/audit/trail.py) on an in-memory audit log (`tests/fakes.py`): which
organization an entry concerns, keyset pages with a bounded scan, and the chain check. No
database: the store's log (locking, PostgreSQL) is tested in test_audit.py and
tests/security/test_readers_and_writers.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from iotpki.core.audit.log import AuditRecord, append_audit, append_audit_many
from iotpki.core.audit.trail import AuditTrail
from tests.fakes import AuditOnlyUnitOfWork, MemoryAuthorities, OwnedAuthority

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def trail_over(uow: AuditOnlyUnitOfWork) -> AuditTrail:
    return AuditTrail(lambda: uow)


def log(uow: AuditOnlyUnitOfWork, *records: AuditRecord) -> None:
    append_audit_many(uow.audit, NOW, list(records))


def test_an_entry_concerns_the_actors_the_details_and_the_authoritys_organization() -> None:
    uow = AuditOnlyUnitOfWork(authorities=MemoryAuthorities([
        OwnedAuthority("operatorco-operations", "operatorco")]))
    log(uow,
        AuditRecord("a", "success", "principal:p1@operatorco", "-"),  # its principal
        AuditRecord("b", "success", "cli", "-", {"recipient": "operatorco"}),  # details
        AuditRecord("c", "success", "cli", "operatorco-operations:1f"),  # the CA's owner
        AuditRecord("d", "success", "principal:p2@deviceco", "deviceco-root:2a"))
    trail = trail_over(uow)
    assert [e.record.action for e in trail.entries_for("operatorco")] == ["a", "b", "c"]
    assert [e.record.action for e in trail.entries_for("deviceco")] == ["d"]
    assert trail.entries_for("chipco") == []


def test_a_page_scans_a_bounded_slice_and_says_where_the_next_starts() -> None:
    uow = AuditOnlyUnitOfWork()
    log(uow, *[AuditRecord("x", "success", "principal:p@deviceco", "-")] * 250,
        AuditRecord("x", "success", "principal:p@operatorco", "mine"))
    trail = trail_over(uow)
    first = trail.page_for("operatorco", 0, 10, scan=100)
    assert first.entries == () and first.next_after == 100  # budget spent, not the end
    found, after = [], 0
    while after is not None:
        page = trail.page_for("operatorco", after, 10, scan=100)
        found.extend(page.entries)
        after = page.next_after
    assert [e.record.target for e in found] == ["mine"]


def test_a_full_page_points_after_its_last_entry() -> None:
    uow = AuditOnlyUnitOfWork()
    log(uow, *[AuditRecord("x", "success", "principal:p@operatorco", str(n)) for n in range(5)])
    page = trail_over(uow).page_for("operatorco", 0, 2)
    assert [e.record.target for e in page.entries] == ["0", "1"] and page.next_after == 2


def test_problems_name_a_changed_entry_and_a_truncated_log() -> None:
    uow = AuditOnlyUnitOfWork()
    for n in range(3):
        append_audit(uow.audit, NOW, AuditRecord("x", "success", "cli", str(n)))
    trail = trail_over(uow)
    assert trail.problems() == (3, [])
    changed = uow.audit.log[1]
    uow.audit.log[1] = dataclasses.replace(changed, record=dataclasses.replace(
        changed.record, target="forged"))
    count, problems = trail.problems()
    assert count == 3 and [(p.seq, p.kind) for p in problems] == [(2, "changed")]
    uow.audit.log[1] = changed
    del uow.audit.log[-1]  # the head still names entry 3
    assert [(p.seq, p.kind) for p in trail.problems()[1]] == [(3, "truncated")]
