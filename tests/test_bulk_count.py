"""Bulk revocation by filter counts before it revokes (issue 18), on SQLite and PostgreSQL:
the count shown (a COUNT over indexes) is the number then revoked, for filters by authority,
status, profile, subject prefix and expiring-before and their combinations; infrastructure
certificates are left out and counted apart; a changed count refuses the revocation and
changes nothing; a filter matching nothing revokes nothing. Each count is checked against
the certificates themselves, read and filtered here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import event

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ca.profile import INFRASTRUCTURE_KINDS
from iotpki.core.errors import ConflictError
from iotpki.core.outcomes import Issued
from tests.api.conftest import DOMAIN
from tests.api.test_infrastructure_revocation import https_certificate, service_certificate
from tests.factories import domain_uri, make_csr

CA, OWN = "operatorco-operations", "operatorco"
R = x509.ReasonFlags
GOOD, HELD, REVOKED = CertificateStatus.GOOD, CertificateStatus.HELD, CertificateStatus.REVOKED


def issue(pki: PKI, name: str, profile: str = "operational", days: int | None = None,
          authority: str = CA) -> CertificateRecord:
    csr, _ = make_csr(name, sans=[domain_uri(DOMAIN)] if authority == CA else [])
    not_after = pki.clock.now() + timedelta(days=days) if days is not None else None
    outcome = pki.issuance.issue(IssuanceRequest(authority, profile, csr, "test",
                                                 not_after=not_after))
    assert isinstance(outcome, Issued), outcome
    return outcome.record


@dataclass(frozen=True)
class Fleet:
    pki: PKI
    tls_fingerprint: str

    def expected(self, query: CertificateQuery, hold: bool) -> tuple[set[str], int]:
        """(fingerprints a bulk change would act on, protected ones matched): the old
        semantics, over every certificate of the organization, in Python."""
        every = self.pki.certificates.find(CertificateQuery(organization=OWN, limit=None))
        skip = {REVOKED} | ({HELD} if hold else set())
        matched = [r for r in every if r.status not in skip and _matches(r, query)]
        kinds = {n for n, p in self.pki.profiles.items() if p.kind in INFRASTRUCTURE_KINDS}
        protected = [r for r in matched
                     if r.profile in kinds or r.fingerprint == self.tls_fingerprint]
        return {r.fingerprint for r in matched} - {r.fingerprint for r in protected}, \
            len(protected)

    def statuses(self) -> dict[str, CertificateStatus]:
        return {r.fingerprint: r.status for r in self.pki.certificates.find(
            CertificateQuery(organization=OWN, limit=None))}


def _matches(record: CertificateRecord, query: CertificateQuery) -> bool:
    return ((query.authority is None or record.authority == query.authority)
            and (query.status is None or record.status is query.status)
            and (query.profile is None or record.profile == query.profile)
            and (query.subject_prefix is None or record.subject.startswith(
                query.subject_prefix))
            and (query.expires_before is None or record.not_after < query.expires_before))


@pytest.fixture
def fleet(demo_pki: PKI) -> Fleet:
    pki = demo_pki
    for n, days in enumerate((10, 11, 14)):
        issue(pki, f"alpha-{n}", days=days)
    issue(pki, "alpha-10", days=200)  # a prefix "CN=alpha-1" matches it too
    issue(pki, "Alpha-9", days=5)  # the prefix is case-sensitive
    issue(pki, "beta-1", days=20)
    issue(pki, "beta%_2", days=300)  # LIKE's wildcards are plain characters here
    pki.revocation.revoke(CA, issue(pki, "alpha-revoked").serial, R.key_compromise, "t")
    pki.revocation.revoke(CA, issue(pki, "beta-held").serial, R.certificate_hold, "t")
    for kind in ("ocsp-responder", "cmp-protection", "manifest-signer"):  # protected
        service_certificate(pki, kind)
    issue(pki, "alpha-of-deviceco", profile="device", authority="deviceco-devices")  # not ours
    return Fleet(pki, https_certificate(pki).fingerprint)  # protected by its fingerprint


def _query(**filters: object) -> CertificateQuery:
    return CertificateQuery(organization=OWN, limit=None, **filters)  # type: ignore[arg-type]


def _soon(pki: PKI, days: int) -> datetime:
    return pki.clock.now() + timedelta(days=days)


def _count_then_revoke(fleet: Fleet, query: CertificateQuery, reason: R) -> int:
    pki, hold = fleet.pki, reason is R.certificate_hold
    changes, protected = fleet.expected(query, hold)
    before = fleet.statuses()
    preview = pki.revocation.preview_matching(query, reason)
    assert (preview.changes, preview.protected) == (len(changes), protected), query
    done = pki.revocation.revoke_matching(query, reason, "t", expected=preview.changes)
    assert (done.revoked, done.protected) == (preview.changes, preview.protected)
    after = fleet.statuses()
    assert {f for f in after if after[f] is not before[f]} == changes, query
    assert all(after[f] is (HELD if hold else REVOKED) for f in changes)
    return preview.changes


def test_the_count_shown_is_the_number_revoked(fleet: Fleet) -> None:
    pki = fleet.pki
    steps = [  # each on what the ones before left
        (_query(subject_prefix="CN=alpha-1"), R.certificate_hold, 2),  # alpha-1, alpha-10
        (_query(status=HELD, subject_prefix="CN=alpha-"), R.superseded, 2),
        (_query(subject_prefix="CN=beta%_"), R.superseded, 1),
        (_query(expires_before=_soon(pki, 12), profile="operational"), R.superseded, 2),
        (_query(authority=CA, status=GOOD, expires_before=_soon(pki, 100)), R.superseded, 2),
        (_query(status=HELD), R.key_compromise, 1),  # beta-held
        (_query(profile="ocsp-responder"), R.superseded, 0),  # protected, counted
        (_query(authority=CA), R.cessation_of_operation, None),  # the rest of ours
    ]
    for query, reason, count in steps:
        revoked = _count_then_revoke(fleet, query, reason)
        assert count is None or revoked == count, query
    assert pki.revocation.preview_matching(_query(authority=CA), R.superseded).protected == 4
    other = pki.certificates.find(CertificateQuery(subject="CN=alpha-of-deviceco"))
    assert [r.status for r in other] == [GOOD]


def test_a_changed_count_refuses_and_changes_nothing(fleet: Fleet) -> None:
    pki, query = fleet.pki, _query(subject_prefix="CN=alpha-")
    shown = pki.revocation.preview_matching(query, R.superseded).changes
    issue(pki, "alpha-late")  # issued after the count was shown
    before = fleet.statuses()
    with pytest.raises(ConflictError, match=f"not the {shown} shown"):
        pki.revocation.revoke_matching(query, R.superseded, "t", expected=shown)
    assert fleet.statuses() == before
    assert pki.revocation.revoke_matching(query, R.superseded, "t",
                                          expected=shown + 1).revoked == shown + 1


@pytest.mark.parametrize("status", [HELD, REVOKED])
def test_a_candidate_changed_by_another_transaction_is_a_conflict(
        fleet: Fleet, status: CertificateStatus) -> None:
    """What a bulk change would meet if another transaction revoked one of its candidates
    after they were read (on PostgreSQL: between the read and the row locks): a revoked
    certificate is never put on hold, nor revoked again; the whole change is refused."""
    pki = fleet.pki
    first, second = issue(pki, "race-1"), issue(pki, "race-2")
    pki.revocation.revoke(CA, first.serial, R.key_compromise, "another transaction")
    before = fleet.statuses()
    with pki.database.unit_of_work() as uow, pytest.raises(ConflictError, match="1 of the 2"):
        uow.revocation.record_bulk_change(CA, [first.serial_hex, second.serial_hex], status,
                                          pki.clock.now(), "superseded", None)
    assert fleet.statuses() == before
    assert before[first.fingerprint] is REVOKED


def test_a_filter_matching_nothing_revokes_nothing(fleet: Fleet) -> None:
    pki, before = fleet.pki, fleet.statuses()
    for query in (_query(subject_prefix="CN=gamma"), _query(subject_prefix="alpha-"),
                  _query(status=HELD, expires_before=_soon(fleet.pki, 1))):
        preview = pki.revocation.preview_matching(query, R.superseded)
        assert (preview.changes, preview.protected) == (0, 0)
        assert pki.revocation.revoke_matching(query, R.superseded, "t", expected=0).revoked == 0
    assert fleet.statuses() == before


def test_a_hold_leaves_held_ones_and_counts_the_protected(fleet: Fleet) -> None:
    pki = fleet.pki
    assert pki.revocation.preview_matching(_query(status=HELD), R.certificate_hold).changes == 0
    assert _count_then_revoke(fleet, _query(profile="manifest-signer"), R.certificate_hold) == 0
    assert pki.revocation.preview_matching(_query(profile="service"), R.superseded
                                           ).protected == 1  # the HTTPS certificate


def test_on_sqlite_each_count_reads_an_index_range(fleet: Fleet) -> None:
    """SQLite keeps no statistics here, so its plans are the same at any size: no COUNT
    reads the table whole, the subject prefix reads its range of ix_certificates_subject
    (not every certificate of the authority), a profile its range of
    ix_certificates_profile without the table. (PostgreSQL's: tests/test_query_plans.py.)"""
    pki = fleet.pki
    if pki.database.dialect != "sqlite":
        pytest.skip("PostgreSQL's plans are tests/test_query_plans.py's")
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
        if statement.upper().startswith("SELECT COUNT(*)"):
            seen.append((statement, parameters))

    plans = {}
    for name, query in (("subject", _query(subject_prefix="CN=alpha-1")),
                        ("profile", _query(profile="operational")),
                        ("subject and profile", _query(subject_prefix="CN=a", profile="x")),
                        ("expiring", _query(expires_before=_soon(pki, 30), status=GOOD))):
        event.listen(pki.database.engine, "before_cursor_execute", capture)
        try:
            pki.revocation.preview_matching(query, R.superseded)
        finally:
            event.remove(pki.database.engine, "before_cursor_execute", capture)
        with pki.database.engine.connect() as conn:
            plans[name] = [" ".join(str(row[-1]) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters)) for statement, parameters in seen]
        seen.clear()
    every = [plan for found in plans.values() for plan in found]
    assert every and not any(re.search(r"SCAN certificates\b", plan) for plan in every), plans
    for name in ("subject", "subject and profile"):  # the last COUNT: all the filter matches
        assert "USING INDEX ix_certificates_subject (subject>? AND subject<?)" in \
            plans[name][-1], plans[name]
    assert "USING COVERING INDEX ix_certificates_profile" in plans["profile"][-1], plans
