"""Manual approval: Pending, then issued on approval or refused on rejection; audited."""

from __future__ import annotations

import pytest

from iotpki.app import PKI
from iotpki.core.errors import ConflictError, RefusalReason
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.pending import PendingStatus
from tests.factories import domain_uri, make_csr

CA, PROFILE = "operatorco-operations", "operational"
DOMAIN = "building-42.operator.example"


def _submit(pki: PKI, sans: list | None = None) -> Pending:  # type: ignore[type-arg]
    csr, _ = make_csr("sensor-5", sans if sans is not None else [domain_uri(DOMAIN)])
    outcome = pki.enrollment.enroll(
        EnrollmentRequest(csr, "device-5", authority=CA, profile=PROFILE), "manual-approval")
    assert isinstance(outcome, Pending)
    assert outcome.retry_after_seconds > 0
    return outcome


def test_pending_until_approved_then_issued(demo_pki: PKI) -> None:
    pending = _submit(demo_pki)
    assert isinstance(demo_pki.enrollment.approval.poll(pending.request_id), Pending)
    assert [p.id for p in demo_pki.enrollment.approval.find()] == [pending.request_id]
    approved = demo_pki.enrollment.approval.approve(pending.request_id, "operator-1")
    assert isinstance(approved, Issued)
    polled = demo_pki.enrollment.approval.poll(pending.request_id)
    assert isinstance(polled, Issued) and polled.record == approved.record
    with pytest.raises(ConflictError):
        demo_pki.enrollment.approval.approve(pending.request_id, "operator-1")
    actions = [e.record.action for e in demo_pki.audit.entries(limit=None)]
    assert actions[-3:] == ["enrollment.submit", "certificate.issue", "enrollment.approved"]


def test_rejected_by_the_operator(demo_pki: PKI) -> None:
    pending = _submit(demo_pki)
    demo_pki.enrollment.approval.reject(pending.request_id, "operator-1", "unknown device")
    polled = demo_pki.enrollment.approval.poll(pending.request_id)
    assert isinstance(polled, Rejected) and "unknown device" in polled.detail
    assert demo_pki.enrollment.approval.get(pending.request_id).status is PendingStatus.REJECTED


def test_approval_still_applies_the_profile(demo_pki: PKI) -> None:
    pending = _submit(demo_pki, sans=[])  # the operational profile requires a SAN
    outcome = demo_pki.enrollment.approval.approve(pending.request_id, "operator-1")
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.SAN_NOT_ALLOWED
    assert demo_pki.enrollment.approval.get(pending.request_id).status is PendingStatus.REJECTED


def test_manual_approval_needs_a_named_authority(demo_pki: PKI) -> None:
    csr, _ = make_csr("x")
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(csr, "d"), "manual-approval")
    assert isinstance(outcome, Rejected)
