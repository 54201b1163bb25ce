"""Maintenance with a maintenance profile configured (IOTPKI_MAINTENANCE_PROFILE): the
device's identities stay good, a maintenance identity is registered, issued, and revoked
(superseded) when maintenance ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from iotpki.app import PKI, build_lifecycle
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.errors import ConfigurationError
from iotpki.core.lifecycle.device import DeviceState
from iotpki.core.lifecycle.transitions import LifecycleService
from iotpki.core.outcomes import Issued
from iotpki.core.ra.registration import RegistrationStatus
from tests.lifecycle.fleet import last_audit, operational_device
from tests.supply_chain.story import DOMAIN, enroll


def with_maintenance_profile(pki: PKI) -> LifecycleService:
    pki.profiles["maintenance"] = replace(pki.profiles["operational"], name="maintenance",
                                          validity=timedelta(days=7))
    settings = replace(pki.settings, maintenance_profile="maintenance")
    return build_lifecycle(settings, pki.database.unit_of_work, pki.registrations, pki.profiles,
                           pki.clock)


def test_maintenance_identity_is_issued_then_superseded(demo_pki: PKI) -> None:
    lifecycle = with_maintenance_profile(demo_pki)
    fleet = operational_device(demo_pki)
    started = lifecycle.report(fleet.device_id, "maintenance_start", "operatorco:dms",
                               {"domain": DOMAIN})
    assert started.device.state is DeviceState.MAINTENANCE and started.certificates == ()
    assert started.registration is not None
    assert started.registration.registration.profile == "maintenance"
    issued, _ = enroll(demo_pki, fleet.device, "sensor-0001")
    assert isinstance(issued, Issued), issued
    assert issued.record.profile == "maintenance"
    assert demo_pki.devices.history(fleet.device_id)[-1].fingerprint == issued.record.fingerprint

    ended = lifecycle.report(fleet.device_id, "maintenance_end", "operatorco:dms")
    assert ended.device.state is DeviceState.ACTIVE
    assert [(r.fingerprint, r.status, r.revocation_reason) for r in ended.certificates] == [
        (issued.record.fingerprint, CertificateStatus.REVOKED, "superseded")]
    for holder in (fleet.device, fleet.operational):  # never held
        assert demo_pki.certificates.get_by_fingerprint(
            holder.record.fingerprint).status is CertificateStatus.GOOD
    assert last_audit(demo_pki, "device.maintenance_end").outcome == "success"


def test_an_unused_maintenance_registration_is_cancelled_when_maintenance_ends(
        demo_pki: PKI) -> None:
    lifecycle = with_maintenance_profile(demo_pki)
    fleet = operational_device(demo_pki)
    started = lifecycle.report(fleet.device_id, "maintenance-start", "dms", {"domain": DOMAIN})
    assert started.registration is not None
    ended = lifecycle.report(fleet.device_id, "maintenance-end", "dms")
    assert ended.cancelled == (started.registration.registration.id,)
    assert demo_pki.registrations.get(ended.cancelled[0]).status is RegistrationStatus.CANCELLED
    assert ended.certificates == ()


def test_an_unknown_maintenance_profile_is_a_configuration_error(demo_pki: PKI) -> None:
    settings = replace(demo_pki.settings, maintenance_profile="nonesuch")
    with pytest.raises(ConfigurationError, match="IOTPKI_MAINTENANCE_PROFILE"):
        build_lifecycle(settings, demo_pki.database.unit_of_work, demo_pki.registrations,
                        demo_pki.profiles, demo_pki.clock)
