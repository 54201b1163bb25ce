"""The hash-chained audit log detects changed, deleted, reordered and truncated entries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from iotpki.app import PKI
from iotpki.core.audit.log import AuditChainError, AuditHead, AuditRecord, chain_entry, verify_audit_chain
from iotpki.core.clock import SystemClock

Tamper = Callable[[PKI], None]


def _sql(*statements: str) -> Tamper:
    def run(pki: PKI) -> None:
        with pki.database.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    return run


CASES = {
    "changed": (_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"), 3, "changed"),
    "details changed": (_sql("UPDATE audit_log SET details = '{}' WHERE seq = 4"), 4, "changed"),
    "deleted": (_sql("DELETE FROM audit_log WHERE seq = 3"), 4, "deleted"),
    "reordered": (_sql("UPDATE audit_log SET seq = -1 WHERE seq = 3",
                       "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                       "UPDATE audit_log SET seq = 4 WHERE seq = -1"), 3, "reordered"),
    "tail deleted": (_sql("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)"),
                     12, "truncated"),
}


def test_intact_log_verifies(demo_pki: PKI) -> None:
    checked, problems = demo_pki.audit.problems()
    assert checked == 12 and problems == []  # 3 organizations, 6 authorities, 1 domain, 2 trusts


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampering_is_detected_and_located(demo_pki: PKI, case: str) -> None:
    tamper, seq, kind = CASES[case]
    tamper(demo_pki)
    _, problems = demo_pki.audit.problems()
    assert problems, case
    assert (problems[0].seq, problems[0].kind) == (seq, kind), [str(p) for p in problems]


def test_reordering_names_the_entry_it_follows(demo_pki: PKI) -> None:
    CASES["reordered"][0](demo_pki)
    _, problems = demo_pki.audit.problems()
    assert [str(p) for p in problems][1] == "entry 4: reordered: it follows entry 2, not entry 3"


def test_verify_raises_for_a_broken_chain() -> None:
    now = SystemClock().now()
    first = chain_entry(AuditHead(0, "0" * 64), now, AuditRecord("a", "success", "x", "t"))
    second = chain_entry(AuditHead(first.seq, first.hash), now, AuditRecord("b", "success", "x", "t"))
    verify_audit_chain([first, second], AuditHead(second.seq, second.hash))
    with pytest.raises(AuditChainError, match="entry 1: changed"):
        forged = chain_entry(AuditHead(0, "0" * 64), now, AuditRecord("a", "success", "y", "t"))
        verify_audit_chain([forged.__class__(1, now, forged.record, first.prev_hash, first.hash),
                            second], AuditHead(second.seq, second.hash))
