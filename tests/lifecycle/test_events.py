"""Each lifecycle event: the device's state, its certificates' status (in the store, the
revocation index and our OCSP responder's answers), the audit entry and the outbox event."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.errors import RefusalReason
from iotpki.core.lifecycle.device import DeviceState
from iotpki.core.lifecycle.transitions import IllegalTransitionError, LifecycleEvent
from iotpki.core.outcomes import Rejected
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from tests.factories import domain_uri
from tests.lifecycle.fleet import (
    index_status,
    last_audit,
    ocsp_status,
    operational_device,
    outbox,
)
from tests.supply_chain.story import DOMAIN, enroll

R = x509.ReasonFlags
ENDING = [
    ("lost", DeviceState.LOST, CertificateStatus.HELD, R.certificate_hold),
    ("maintenance_start", DeviceState.MAINTENANCE, CertificateStatus.HELD, R.certificate_hold),
    ("stolen", DeviceState.STOLEN, CertificateStatus.REVOKED, R.key_compromise),
    ("compromised", DeviceState.COMPROMISED, CertificateStatus.REVOKED, R.key_compromise),
    ("broken", DeviceState.BROKEN, CertificateStatus.REVOKED, R.cessation_of_operation),
    ("retired", DeviceState.RETIRED, CertificateStatus.REVOKED, R.cessation_of_operation),
]


@pytest.mark.parametrize(("event", "state", "status", "reason"), ENDING)
def test_event_sets_state_and_certificate_status(
        demo_pki: PKI, event: str, state: DeviceState, status: CertificateStatus,
        reason: x509.ReasonFlags) -> None:
    fleet = operational_device(demo_pki)
    outcome = demo_pki.lifecycle.report(fleet.device_id, event, "operatorco:crm",
                                        {"ticket": "CRM-1"}, organization="operatorco")
    assert outcome.device.state is state and outcome.previous_state is DeviceState.ACTIVE
    # Both the device certificate and the operational certificate.
    assert {r.fingerprint for r in outcome.certificates} == {
        fleet.device.record.fingerprint, fleet.operational.record.fingerprint}
    for holder in (fleet.device, fleet.operational):
        record = demo_pki.certificates.get_by_fingerprint(holder.record.fingerprint)
        assert record.status is status and record.revocation_reason == reason.value
        assert index_status(demo_pki, record).status is status
        answer = ocsp_status(demo_pki, holder)
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason is reason
    chip = demo_pki.certificates.get_by_fingerprint(fleet.chip.record.fingerprint)
    assert chip.status is CertificateStatus.GOOD  # the supplier's component stays ChipCo's
    audit = last_audit(demo_pki, f"device.{event}")
    assert (audit.outcome, audit.actor, audit.target) == ("success", "operatorco:crm",
                                                          fleet.device_id)
    assert audit.details["state"] == state.value and audit.details["details"] == {"ticket": "CRM-1"}
    assert len(audit.details["certificates"]) == 2
    kind, payload = outbox(demo_pki, "device.")[-1]
    assert kind == f"device.{event}" and payload["organization"] == "operatorco"
    action = "certificate.hold" if status is CertificateStatus.HELD else "certificate.revoke"
    assert last_audit(demo_pki, action).details["reason"] == reason.value


@pytest.mark.parametrize(("start", "end", "state"), [
    ("lost", "found", DeviceState.LOST),
    ("maintenance-start", "maintenance-end", DeviceState.MAINTENANCE)])
def test_hold_and_release_round_trip(demo_pki: PKI, start: str, end: str,
                                     state: DeviceState) -> None:
    fleet = operational_device(demo_pki)
    held = demo_pki.lifecycle.report(fleet.device_id, start, "operatorco:dms")
    assert held.device.state is state
    outcome, _ = enroll(demo_pki, fleet.operational, "sensor-0001", method="current-certificate",
                        sans=[domain_uri(DOMAIN)])  # a held certificate is not renewed
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REVOKED
    released = demo_pki.lifecycle.report(fleet.device_id, end, "operatorco:dms")
    assert released.device.state is DeviceState.ACTIVE
    for holder in (fleet.device, fleet.operational):
        record = demo_pki.certificates.get_by_fingerprint(holder.record.fingerprint)
        assert record.status is CertificateStatus.GOOD and record.revocation_reason is None
        entry = index_status(demo_pki, record)
        assert entry.released_at is not None  # removeFromCRL in the next delta CRL
        assert ocsp_status(demo_pki, holder).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert last_audit(demo_pki, f"device.{end.replace('-', '_')}").details["previous_state"] == \
        state.value
    assert [k for k, _ in outbox(demo_pki, "certificate.released")] == ["certificate.released"] * 2


def test_lost_then_stolen_revokes_the_held_certificates(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    held = demo_pki.lifecycle.report(fleet.device_id, "lost", "crm")
    held_at = held.certificates[0].revoked_at
    stolen = demo_pki.lifecycle.report(fleet.device_id, "stolen", "crm")
    assert stolen.device.state is DeviceState.STOLEN
    assert {r.status for r in stolen.certificates} == {CertificateStatus.REVOKED}
    # RFC 5280 §5.3.1: the hold's revocation time stands.
    assert stolen.certificates[0].revoked_at == held_at


@pytest.mark.parametrize(("first", "illegal"), [
    ("retired", "found"), ("retired", "lost"), (None, "found"), (None, "maintenance_end"),
    ("lost", "renewal_due"), ("stolen", "owner_change")])
def test_illegal_transition_is_refused_and_changes_nothing(
        demo_pki: PKI, first: str | None, illegal: str) -> None:
    fleet = operational_device(demo_pki)
    if first is not None:
        demo_pki.lifecycle.report(fleet.device_id, first, "crm")
    before_state = demo_pki.devices.get(fleet.device_id).state
    before_certs = [demo_pki.certificates.get_by_fingerprint(h.record.fingerprint)
                    for h in (fleet.device, fleet.operational)]
    before_events = outbox(demo_pki)
    with pytest.raises(IllegalTransitionError, match=f"is {before_state.value}") as refused:
        demo_pki.lifecycle.report(fleet.device_id, illegal, "crm", {"new_owner": "chipco"})
    assert refused.value.event is LifecycleEvent(illegal)
    assert demo_pki.devices.get(fleet.device_id).state is before_state
    assert [demo_pki.certificates.get_by_fingerprint(h.record.fingerprint)
            for h in (fleet.device, fleet.operational)] == before_certs
    assert outbox(demo_pki) == before_events
    audit = last_audit(demo_pki, f"device.{illegal}")
    assert audit.outcome == "refused" and audit.details["reason"] == "IllegalTransitionError"


def test_unknown_event_is_refused(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    with pytest.raises(Exception, match="unknown lifecycle event 'exploded'"):
        demo_pki.lifecycle.report(fleet.device_id, "exploded", "crm")
    assert demo_pki.devices.get(fleet.device_id).state is DeviceState.ACTIVE


def test_renewal_due_is_an_event_for_the_device_management_system(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    outcome = demo_pki.lifecycle.report(fleet.device_id, LifecycleEvent.RENEWAL_DUE, "dms")
    assert outcome.device.state is DeviceState.ACTIVE and outcome.certificates == ()
    kind, payload = outbox(demo_pki, "device.")[-1]
    assert kind == "device.renewal_due" and payload["device"] == fleet.device_id
    assert last_audit(demo_pki, "device.renewal_due").outcome == "success"


def test_a_retired_device_cannot_enroll_again(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    demo_pki.lifecycle.report(fleet.device_id, "retired", "crm")
    # Even with a fresh registration for its (good) component identity:
    demo_pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=fleet.chip.record.fingerprint), "deviceco:ra")
    outcome, _ = enroll(demo_pki, fleet.chip, "sensor-0001")
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REVOKED
    assert outcome.detail == f"device {fleet.device_id} is retired"
