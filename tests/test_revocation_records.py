"""Revoke, hold and release: status in the store, audit entries and outbox events."""

from __future__ import annotations

import pytest
from cryptography import x509
from sqlalchemy import text

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import ConflictError, NotFoundError
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.reasons import parse_reason
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
R = x509.ReasonFlags


def _issue(pki: PKI) -> CertificateRecord:
    csr, _ = make_csr("sensor-1", [domain_uri("building-42.operator.example")])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "t"))
    assert isinstance(outcome, Issued)
    return outcome.record


def _events(pki: PKI) -> list[str]:
    with pki.database.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT type FROM events ORDER BY id"))]


def test_revoke_records_status_reason_time_audit_and_event(demo_pki: PKI) -> None:
    record = _issue(demo_pki)
    revoked = demo_pki.revocation.revoke(CA, record.serial, R.key_compromise, "operator-1")
    assert revoked.status is CertificateStatus.REVOKED
    assert revoked.revocation_reason == "keyCompromise" and revoked.revoked_at is not None
    last = demo_pki.audit.entries(limit=None)[-1]
    assert (last.record.action, last.record.actor) == ("certificate.revoke", "operator-1")
    assert last.record.target == f"{CA}:{record.serial_hex}"
    assert _events(demo_pki)[-1] == "certificate.revoked"
    with pytest.raises(ConflictError, match="already revoked"):
        demo_pki.revocation.revoke(CA, record.serial, R.superseded, "operator-1")


def test_hold_then_release_round_trip(demo_pki: PKI) -> None:
    record = _issue(demo_pki)
    held = demo_pki.revocation.revoke(CA, record.serial, R.certificate_hold, "t")
    assert held.status is CertificateStatus.HELD and held.revocation_reason == "certificateHold"
    released = demo_pki.revocation.release(CA, record.serial, "t")
    assert released.status is CertificateStatus.GOOD
    assert released.revoked_at is None and released.revocation_reason is None
    assert _events(demo_pki)[-2:] == ["certificate.held", "certificate.released"]
    with pytest.raises(ConflictError, match="not on hold"):
        demo_pki.revocation.release(CA, record.serial, "t")


def test_hold_then_revoke_keeps_the_first_revocation_time(demo_pki: PKI) -> None:
    record = _issue(demo_pki)
    held = demo_pki.revocation.revoke(CA, record.serial, R.certificate_hold, "t")
    revoked = demo_pki.revocation.revoke(CA, record.serial, R.cessation_of_operation, "t")
    assert revoked.status is CertificateStatus.REVOKED and revoked.revoked_at == held.revoked_at


def test_unknown_certificate(demo_pki: PKI) -> None:
    with pytest.raises(NotFoundError):
        demo_pki.revocation.revoke(CA, 12345, R.unspecified, "t")


@pytest.mark.parametrize(("text_", "reason"), [
    ("keyCompromise", R.key_compromise), ("key_compromise", R.key_compromise),
    ("certificate-hold", R.certificate_hold), ("CESSATIONOFOPERATION", R.cessation_of_operation),
])
def test_reason_names(text_: str, reason: x509.ReasonFlags) -> None:
    assert parse_reason(text_) is reason


def test_remove_from_crl_is_not_a_revocation_reason() -> None:
    with pytest.raises(ValueError, match="unknown revocation reason"):
        parse_reason("removeFromCRL")
