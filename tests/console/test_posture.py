"""Screen 8, posture checks, in the console: an auditor sees the organization's findings
linked to their pages; another organization sees none of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from iotpki.core.integration.principal import Role
from iotpki.store import posture as store_posture
from tests.api.conftest import OTHER, OWN, World
from tests.console.conftest import signed_in
from tests.lifecycle.fleet import operational_device
from tests.test_posture_checks import holding, key_id, legacy, reuse_key


def test_the_page_shows_the_organizations_findings_only(world: World, console_app: Any) -> None:
    pki = world.pki
    first, second = operational_device(pki, 21), operational_device(pki, 22)
    reuse_key(pki, second, first.operational.key)
    weak = legacy(pki, "operatorco-operations", "sensor-weak",
                  rsa.generate_private_key(65537, 1024), pki.clock.now() + timedelta(days=60))
    key_id = first.operational.record.key_facts.key_id
    page = signed_in(console_app, world, OWN, Role.AUDITOR).get("/console/posture")
    assert page.status_code == 200
    for shown in (key_id, weak.serial_hex, "RSA 1024", f"/console/devices/{first.device_id}",
                  f"/console/devices/{second.device_id}",
                  f"/console/certificates/operatorco-operations/{weak.serial_hex}"):
        assert shown in page.text
    page = signed_in(console_app, world, OTHER, Role.ADMIN).get("/console/posture")
    assert page.status_code == 200
    for hidden in (key_id, weak.serial_hex, first.device_id, second.device_id):
        assert hidden not in page.text


def test_a_key_on_many_devices_names_the_first_and_says_more(
        world: World, console_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_posture, "HOLDERS_COUNTED", 2)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [f"sensor-cloned-{n}" for n in range(3)]
    for name in names:
        holding(world.pki, OWN, name, key)
    page = signed_in(console_app, world, OWN, Role.AUDITOR).get("/console/posture")
    assert page.status_code == 200
    assert key_id(key) in page.text and "more than 2 devices" in page.text
    assert sum(name in page.text for name in names) == 2
