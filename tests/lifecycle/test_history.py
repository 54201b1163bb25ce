"""A device's identity history: every certificate issued for it is linked in the issuing
transaction (component, device, operational, renewals), each with stage and status."""

from __future__ import annotations

import pytest

from iotpki.app import PKI
from iotpki.core.errors import NotFoundError
from iotpki.core.lifecycle.device import DeviceState
from tests.lifecycle.fleet import last_audit, operational_device, renew


def test_history_lists_the_chain_of_identities(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    renewed = renew(demo_pki, fleet.operational)
    history = demo_pki.devices.history(fleet.device_id)
    assert [(i.stage, i.fingerprint) for i in history] == [
        ("component", fleet.chip.record.fingerprint),
        ("device", fleet.device.record.fingerprint),
        ("operational", fleet.operational.record.fingerprint),
        ("operational", renewed.record.fingerprint),
    ]
    assert [i.status for i in history] == ["good"] * 4
    assert history[1].certificate is not None
    assert history[1].certificate.authority == "deviceco-devices"


def test_the_device_is_recorded_and_handed_over_with_its_identities(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    device = demo_pki.devices.get(fleet.device_id)
    # DeviceCo's device certificate recorded the device; OperatorCo's registration took it over.
    assert (device.organization, device.current_owner, device.state) == (
        "deviceco", "operatorco", DeviceState.ACTIVE)
    assert device.name == "sensor-0001" and device.components == (fleet.chip.record.fingerprint,)
    assert last_audit(demo_pki, "device.build").details["certificate"] == \
        fleet.device.record.fingerprint
    handed = last_audit(demo_pki, "device.enroll")
    assert (handed.details["previous_owner"], handed.details["owner"]) == ("deviceco", "operatorco")


def test_another_organization_does_not_see_the_device(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    assert demo_pki.devices.get(fleet.device_id, organization="operatorco").id == fleet.device_id
    with pytest.raises(NotFoundError):
        demo_pki.devices.history(fleet.device_id, organization="deviceco")
    assert demo_pki.devices.find(owner="deviceco") == []


def test_a_device_built_first_links_its_device_certificate(demo_pki: PKI) -> None:
    from tests.supply_chain.story import DEVICE_TARGET, enroll, make_chip, ship
    chip = make_chip(demo_pki, 5)
    ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    built = demo_pki.devices.build("deviceco", "sensor-0005", [chip.record.fingerprint], "line")
    outcome, _ = enroll(demo_pki, chip, "sensor-0005")
    history = demo_pki.devices.history(built.id)
    assert [i.stage for i in history] == ["component", "device"]
    assert len(demo_pki.devices.find(owner="deviceco")) == 1  # no second device recorded
    assert outcome.record.fingerprint == history[1].fingerprint  # type: ignore[union-attr]
