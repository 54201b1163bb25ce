"""Owner and context changes: the identities above the device certificate are revoked
(affiliationChanged, superseded) and a registration for the next identity is opened; on an
owner change the old owner loses every right over the device."""

from __future__ import annotations

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.lifecycle.device import DeviceState
from iotpki.core.outcomes import Issued
from iotpki.core.ra.registration import RegistrationMethod, RegistrationStatus
from iotpki.core.ra.registration_service import RegistrationSpec
from tests.factories import domain_uri
from tests.lifecycle.fleet import (
    add_organization,
    index_status,
    last_audit,
    operational_device,
    outbox,
)
from tests.supply_chain.story import advance, enroll

NEW_DOMAIN = "plant-7.newco.example"


def test_owner_change_cuts_the_old_owner_off_and_registers_the_new_one(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    authority = add_organization(demo_pki, "newco", NEW_DOMAIN)
    # OperatorCo had prepared a context change for this device: it must not survive.
    stale = demo_pki.registrations.create(RegistrationSpec(
        "operatorco", "operatorco-operations", "operational", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=fleet.device.record.fingerprint), "operatorco:ra").registration

    outcome = demo_pki.lifecycle.report(
        fleet.device_id, "owner_change", "operatorco:crm",
        {"new_owner": "newco", "domain": NEW_DOMAIN, "subject": "CN=sensor-0001,O=NewCo"},
        organization="operatorco")

    assert (outcome.device.state, outcome.device.current_owner) == (DeviceState.REGISTERED, "newco")
    assert outcome.cancelled == (stale.id,)
    assert demo_pki.registrations.get(stale.id).status is RegistrationStatus.CANCELLED
    operational = demo_pki.certificates.get_by_fingerprint(fleet.operational.record.fingerprint)
    assert operational.status is CertificateStatus.REVOKED
    assert operational.revocation_reason == x509.ReasonFlags.affiliation_changed.value
    assert index_status(demo_pki, operational).reason == "affiliationChanged"
    device_cert = demo_pki.certificates.get_by_fingerprint(fleet.device.record.fingerprint)
    assert device_cert.status is CertificateStatus.GOOD  # the anchor of the next identity
    assert outcome.registration is not None
    registration = outcome.registration.registration
    assert (registration.organization, registration.authority, registration.identity_fingerprint) \
        == ("newco", authority, fleet.device.record.fingerprint)
    audit = last_audit(demo_pki, "device.owner_change")
    assert (audit.details["previous_owner"], audit.details["organization"]) == ("operatorco",
                                                                                 "newco")
    assert outbox(demo_pki, "device.")[-1][0] == "device.owner_change"

    # The old owner can no longer see or report anything about the device.
    with pytest.raises(NotFoundError):
        demo_pki.lifecycle.report(fleet.device_id, "lost", "operatorco:crm",
                                  organization="operatorco")
    assert last_audit(demo_pki, "device.lost").outcome == "refused"
    with pytest.raises(NotFoundError):
        demo_pki.devices.get(fleet.device_id, organization="operatorco")

    # The device enrolls with the new owner, presenting its device certificate.
    issued, key = enroll(demo_pki, fleet.device, "sensor-0001")
    assert isinstance(issued, Issued), issued
    assert issued.record.authority == authority and domain_uri(NEW_DOMAIN) in \
        issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert demo_pki.devices.get(fleet.device_id).state is DeviceState.ACTIVE
    assert demo_pki.devices.history(fleet.device_id)[-1].fingerprint == issued.record.fingerprint
    advance(fleet.device, issued, key)
    demo_pki.lifecycle.report(fleet.device_id, "lost", "newco:crm", organization="newco")


def test_owner_change_to_a_domain_the_new_owner_does_not_own_changes_nothing(
        demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    add_organization(demo_pki, "newco", NEW_DOMAIN)
    before = outbox(demo_pki)
    with pytest.raises(ConfigurationError, match="does not own domain"):
        demo_pki.lifecycle.report(fleet.device_id, "owner_change", "operatorco:crm",
                                  {"new_owner": "newco", "domain": "building-42.operator.example"})
    device = demo_pki.devices.get(fleet.device_id)
    assert (device.state, device.current_owner) == (DeviceState.ACTIVE, "operatorco")
    assert demo_pki.certificates.get_by_fingerprint(
        fleet.operational.record.fingerprint).status is CertificateStatus.GOOD
    assert outbox(demo_pki) == before
    assert last_audit(demo_pki, "device.owner_change").outcome == "refused"


def test_owner_change_needs_a_new_owner(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    with pytest.raises(ConfigurationError, match="'new_owner' is required"):
        demo_pki.lifecycle.report(fleet.device_id, "owner_change", "crm", {})
    with pytest.raises(NotFoundError, match="unknown organization"):
        demo_pki.lifecycle.report(fleet.device_id, "owner_change", "crm", {"new_owner": "nobody"})


def test_context_change_supersedes_and_registers_a_new_operational_identity(
        demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    demo_pki.organizations.add_domain("operatorco", "building-43.operator.example", "t")
    with pytest.raises(ConfigurationError, match="names the new context"):
        demo_pki.lifecycle.report(fleet.device_id, "context_change", "crm", {})
    outcome = demo_pki.lifecycle.report(fleet.device_id, "context-change", "operatorco:dms",
                                        {"domain": "building-43.operator.example"})
    assert (outcome.device.state, outcome.device.current_owner) == (DeviceState.REGISTERED,
                                                                    "operatorco")
    superseded = demo_pki.certificates.get_by_fingerprint(fleet.operational.record.fingerprint)
    assert superseded.status is CertificateStatus.REVOKED
    assert superseded.revocation_reason == "superseded"
    assert outcome.registration is not None
    assert outcome.registration.registration.authority == "operatorco-operations"
    issued, _ = enroll(demo_pki, fleet.device, "sensor-0001")
    assert isinstance(issued, Issued), issued
    assert issued.record.domains == {"building-43.operator.example"}
    assert demo_pki.devices.get(fleet.device_id).state is DeviceState.ACTIVE
    assert last_audit(demo_pki, "device.context_change").details["certificates"] == [
        f"operatorco-operations:{fleet.operational.record.serial_hex}"]
