"""The hot paths stay O(log n) at ten million certificates (issue 20): every statement that
issuance, OCSP, revocation, CRL publication, the API's listings (keyset pages) and the audit
trail send to PostgreSQL is captured and EXPLAINed with sequential scans priced out
(`enable_seqscan = off`): the planner then scans a whole table only where no index serves
the statement, so a `Seq Scan` in a plan is a missing index, whatever the table's size now.
(At this small scale the planner would rightly prefer a sequential scan.)"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import event

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.lifecycle.device import Device, DeviceState
from iotpki.core.lifecycle.device_inventory import DeviceInventory, DeviceQuery
from iotpki.core.lifecycle.posture import PostureChecks
from iotpki.https_server import prepare_tls
from iotpki.settings import Settings
from iotpki.store import shared_keys
from tests.servers import PASSPHRASE
from tests.storm import CA
from tests.test_replicas import issue, ocsp_status

# Tables read whole by design: one row per authority or organization, and the domains (a
# few per organization: the foreign-domain posture check reads the other organizations').
SMALL_TABLES = {"revocation_counters", "authorities", "organizations", "alembic_version",
                "domains"}


@pytest.fixture
def pki(postgres_schema_url: str, tmp_path: Path) -> Iterator[PKI]:
    os.environ["IOTPKI_CA_PASSPHRASE"] = PASSPHRASE
    instance = build_pki(Settings(tmp_path / "data", postgres_schema_url,
                                  public_url="http://pki.test:8080"))
    create_demo_hierarchy(instance)
    try:
        yield instance
    finally:
        instance.close()


def hot_paths(pki: PKI) -> None:
    """One of each request the issue's scale targets: issuance, OCSP, revocation, CRL
    publication, listings and filters, lookups, the audit trail."""
    issued = [issue(pki, f"device-{i}") for i in range(5)]
    issue(pki, "device-0")  # a renewal: the lineage lookup by subject
    ocsp_status(pki, issued[0], nonce=True)
    pki.ocsp.refresh_changes()
    pki.revocation.revoke(CA, issued[1].record.serial, x509.ReasonFlags.key_compromise, "t")
    pki.ocsp.refresh_changes()
    pki.certificates.get_by_fingerprint(issued[2].record.fingerprint)
    pki.certificates.get(CA, issued[3].record.serial)
    first = pki.listings.find(CertificateQuery(authority=CA, limit=2))
    pki.listings.find(CertificateQuery(authority=CA, limit=2, after=first[-1].position))
    pki.listings.find(CertificateQuery(authority=CA, status=CertificateStatus.REVOKED))
    pki.listings.find(CertificateQuery(authority=CA, profile="operational", limit=10))
    pki.listings.find(CertificateQuery(organization="operatorco", expires_before=datetime.now(
        UTC) + timedelta(days=30)))
    pki.audit.entries(after=5, limit=10)
    pki.crls.publish(CA)
    moment = datetime.now(UTC) - timedelta(days=1)
    pki.devices.find("operatorco", limit=10, after=(moment, "0"))  # the API's keyset pages
    pki.registrations.find("operatorco", limit=10, after=(moment, "0"))
    # posture checks (the console's screen 8): linking identities records shared keys (one
    # certificate on three devices here), an owner change checks them again, the page reads
    # those records and each check's first findings
    devices = [Device(str(uuid.uuid4()), "operatorco", f"plan-{n}", (f"{n:064x}",),
                      bytes(32), moment, DeviceState.ACTIVE, "operatorco", moment)
               for n in range(3)]
    with pki.database.unit_of_work() as uow:
        for device in devices:
            uow.devices.add(device)
            uow.devices.link(device.id, issued[3].record.fingerprint, "operational", moment)
        uow.devices.move(devices[2].id, DeviceState.ACTIVE, DeviceState.ACTIVE, "deviceco",
                         moment)
        uow.commit()
    PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles).report("operatorco")
    inventory = DeviceInventory(pki.database.read_unit_of_work)  # the console's screen 2
    for search in ("plan-1", "device-2", issued[2].record.serial_hex, "no-such-device"):
        inventory.page(DeviceQuery(owner="operatorco", search=search))
    inventory.page(DeviceQuery(owner="operatorco", state=DeviceState.LOST))
    inventory.page(DeviceQuery(owner="operatorco", profile="operational",
                               domain="building-42.operator.example"))
    bulk_counts(pki)


def bulk_counts(pki: PKI) -> None:
    """The console's bulk revocation (issue 18): the COUNTs before it, by each filter, with
    the protected certificates (by profile, and the HTTPS certificate by fingerprint), then
    the revocation checked against the count shown."""
    prepare_tls(pki, ["localhost"])
    soon = datetime.now(UTC) + timedelta(days=30)
    reason = x509.ReasonFlags.superseded
    for filters in ({"subject_prefix": "CN=device-1"}, {"profile": "operational"},
                    {"authority": CA, "status": CertificateStatus.GOOD},
                    {"expires_before": soon}, {"profile": "operational", "expires_before": soon}):
        pki.revocation.preview_matching(CertificateQuery(
            organization="operatorco", limit=None, **filters), reason)  # type: ignore[arg-type]
    one = CertificateQuery(organization="operatorco", subject_prefix="CN=device-4", limit=None)
    shown = pki.revocation.preview_matching(one, reason).changes
    pki.revocation.revoke_matching(one, reason, "t", expected=shown)


def statements_of(pki: PKI, run: Callable[[PKI], object] = hot_paths,
                  kinds: tuple[str, ...] = ("SELECT", "UPDATE", "DELETE", "WITH"),
                  ) -> list[tuple[str, Any]]:
    """The single statements (with their parameters) that `run` sends, of the `kinds` given
    (the opening words)."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(kinds):
            seen.append((statement, parameters))

    event.listen(pki.database.engine, "before_cursor_execute", capture)
    try:
        run(pki)
    finally:
        event.remove(pki.database.engine, "before_cursor_execute", capture)
    return seen


def whole_table_scans(pki: PKI, statements: list[tuple[str, Any]]) -> dict[str, list[str]]:
    """Statement → the tables its plan reads whole, with sequential scans priced out."""
    raw = pki.database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET enable_seqscan = off")
        scans = {}
        for statement, parameters in statements:
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            tables = set(re.findall(r"Seq Scan on (\w+)", plan)) - SMALL_TABLES
            if tables:
                scans[" ".join(statement.split())] = sorted(tables)
        return scans
    finally:
        raw.rollback()
        raw.close()


def test_every_hot_statement_is_served_by_an_index(pki: PKI) -> None:
    statements = statements_of(pki)
    assert len(statements) > 20  # the paths ran
    assert whole_table_scans(pki, statements) == {}


def test_recording_a_shared_key_is_served_by_indexes(pki: PKI) -> None:
    """The statements that record a shared key as an identity is linked or a device changes
    owner (`store.shared_keys`; prepared, so not captured above): from the key index, never
    from every certificate or device."""
    dialect = pki.database.engine.dialect
    statements = [(str(shared_keys._record("postgresql", by_device).compile(dialect=dialect)),
                   {"device": "d", "fingerprint": "f"}) for by_device in (False, True)]
    assert whole_table_scans(pki, statements) == {}


def test_the_api_lists_page_by_keyset_not_by_offset(pki: PKI) -> None:
    """A deep page is an index range scan from the cursor's position."""
    for i in range(5):
        issue(pki, f"paged-{i}")
    pages, after = [], None
    while True:
        page = pki.listings.find(CertificateQuery(authority=CA, limit=2, after=after))
        if not page:
            break
        pages.append([r.subject for r in page])
        after = page[-1].position
    flat = [subject for page in pages for subject in page]
    assert flat == [f"CN=paged-{i}" for i in range(5)]
    statements = [s for s, _ in statements_of(pki) if "OFFSET" in s.upper()]
    assert statements == []


def test_the_bulk_counts_read_index_ranges(pki: PKI) -> None:
    """An index scan with seqscan priced out is not enough here: a whole index read with a
    filter would pass: the subject prefix is an index range (the LIKE prefix on the
    varchar_pattern_ops index), never a substring over every subject. (Which index serves
    the other counts is the planner's choice by size; on these few rows any will do.)"""
    for i in range(5):
        issue(pki, f"device-{i}")
    seen = statements_of(pki, bulk_counts, ("SELECT COUNT(*)",))
    plans = plans_of(pki, seen)
    assert plans and all("Seq Scan on certificates" not in plan for plan in plans)
    by_subject = [p for s, p in zip(seen, plans, strict=True)
                  if "LIKE" in s[0] and "fingerprint IN" not in s[0]]
    assert by_subject and all(re.search(r"Index Cond: .*subject\)::text ~>=~", p)
                              for p in by_subject), by_subject


def plans_of(pki: PKI, statements: list[tuple[str, Any]]) -> list[str]:
    raw = pki.database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET enable_seqscan = off")
        plans = []
        for statement, parameters in statements:
            cursor.execute("EXPLAIN " + statement, parameters)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return plans
    finally:
        raw.rollback()
        raw.close()
