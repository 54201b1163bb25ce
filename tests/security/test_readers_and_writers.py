"""Issue 15 item 8: readers never stall writers. The audit listing used to scan the whole
log inside `BEGIN IMMEDIATE` (SQLite's write lock); three auditors paging pushed CMP latency
from 20 ms to seconds. Read-only units now begin deferred, and an audit page reads a
bounded slice of the log (keyset pagination on the sequence number)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from iotpki.app import PKI
from iotpki.core.audit.log import AuditRecord, append_audit_many
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"


def _issue(pki: PKI) -> object:
    csr, _ = make_csr("sensor-r", sans=[domain_uri("building-42.operator.example")])
    return pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))


def test_a_writer_is_not_blocked_by_an_open_read_transaction(demo_pki: PKI) -> None:
    """The read unit stays open (as during a long listing) while a certificate is issued
    in another thread: the issuance completes without waiting for the reader."""
    done: list[object] = []
    with demo_pki.database.read_unit_of_work() as reader:
        assert list(reader.audit.entries(0, 5))
        writer = threading.Thread(target=lambda: done.append(_issue(demo_pki)))
        started = time.monotonic()
        writer.start()
        writer.join(timeout=20)
        elapsed = time.monotonic() - started
        assert done and isinstance(done[0], Issued), "the writer waited for the reader"
        assert elapsed < 10
        # The reader's snapshot is unchanged by the concurrent write (repeatable reads).
        assert list(reader.audit.entries(0, 5))


def test_readers_of_the_pki_use_read_only_units(demo_pki: PKI) -> None:
    """Audit pages and OCSP may read through the replica unit (issue 20: a read-only unit
    on the replica while it is fresh, else on the primary), the certificate directory
    through the primary's read unit; none of them through a writer."""
    database = demo_pki.database
    assert demo_pki.audit._uow == database.replica_unit_of_work
    assert demo_pki.ocsp._uow == database.replica_unit_of_work
    assert demo_pki.certificates._uow == database.read_unit_of_work
    for reader in (demo_pki.audit, demo_pki.certificates, demo_pki.ocsp):
        with reader._uow() as uow:
            assert uow._read_only


def test_an_audit_page_reads_a_bounded_slice_and_says_where_to_go_on(demo_pki: PKI) -> None:
    """Keyset pagination: 300 entries of another organization, then one of ours; a page
    with a scan budget of 100 is empty but points past what it read, and paging on
    reaches our entry."""
    now = datetime.now(UTC)
    with demo_pki.database.unit_of_work() as uow:
        start = uow.audit.head().seq
        append_audit_many(uow.audit, now, [
            AuditRecord("x.test", "success", "principal:p@deviceco", "-") for _ in range(300)]
            + [AuditRecord("x.test", "success", "principal:p@operatorco", "mine")])
        uow.commit()
    page = demo_pki.audit.page_for("operatorco", start, 10, scan=100)
    assert page.entries == () and page.next_after == start + 100
    found, after = [], start
    while after is not None:
        page = demo_pki.audit.page_for("operatorco", after, 10, scan=100)
        found.extend(page.entries)
        after = page.next_after
    assert [e.record.target for e in found] == ["mine"]
    assert [e.record.target for e in demo_pki.audit.entries_for("operatorco", start)] == ["mine"]
