"""Screen 2, devices: the inventory's filters and keyset pages, the device page with its
identity timeline, lifecycle events from the console (roles, tenants, CSRF)."""

from __future__ import annotations

from typing import Any

from iotpki.app import PKI
from iotpki.core.integration.principal import Role
from iotpki.core.lifecycle.device import DeviceState
from iotpki.core.lifecycle.device_inventory import DeviceInventory, DeviceQuery
from tests.api.conftest import OTHER, OWN, World
from tests.conftest import last_audit_seq
from tests.console.conftest import signed_in
from tests.lifecycle.fleet import operational_device


def test_the_inventory_filters_and_pages(world: World, console_app: Any) -> None:
    more = [operational_device(world.pki, n).device_id for n in (2, 3)]
    everyone = [world.device, *more]
    inventory = DeviceInventory(world.pki.database.read_unit_of_work)
    seen, after = [], None
    while True:  # one device per page, each page after the last one shown
        page = inventory.page(DeviceQuery(owner=OWN, limit=1, after=after))
        seen += [d.id for d in page.devices]
        if page.next is None:
            break
        after = page.next
    assert seen == everyone
    history = world.pki.devices.history(more[0], OWN)
    operational = next(i.certificate for i in history if i.stage == "operational")
    assert operational is not None
    client = signed_in(console_app, world, OWN, Role.AUDITOR)
    try:
        for term in (operational.serial_hex, operational.fingerprint, "sensor-0002"):
            found = client.get("/console/devices", params={"search": term})
            assert found.status_code == 200
            assert more[0] in found.text and more[1] not in found.text, term
        assert "No device matches" in client.get(
            "/console/devices", params={"search": "no-such-sensor"}).text
        for term in ("sensor-000", "building-42.operator.example"):  # CN prefix, domain
            found = client.get("/console/devices", params={"search": term}).text
            assert all(d in found for d in everyone), term
        lost = client.get("/console/devices", params={"state": "lost"})
        assert "No device matches" in lost.text
        domain = client.get("/console/devices", params={
            "domain": "building-42.operator.example", "profile": "operational"})
        assert all(d in domain.text for d in everyone)
        paged = client.get("/console/devices", params={"cursor": "!!"})
        assert paged.status_code == 422 and "cursor" in paged.text
        assert client.get("/console/devices", params={"state": "melted"}).status_code == 422
    finally:
        client.close()


def test_the_device_page_draws_the_identity_timeline(world: World, console_app: Any) -> None:
    client = signed_in(console_app, world, OWN, Role.AUDITOR)
    try:
        page = client.get(f"/console/devices/{world.device}")
    finally:
        client.close()
    assert page.status_code == 200
    timeline = page.text.split('class="timeline"')[1].split("</svg>")[0]
    for stage in ("component", "device", "operational"):
        assert f">{stage}</text>" in timeline
    for identity in world.pki.devices.history(world.device, OWN):
        if identity.certificate is not None:  # linked only if one of OperatorCo's authorities
            link = (f'href="/console/certificates/{identity.certificate.authority}/'
                    f'{identity.certificate.serial_hex}"')
            assert (link in timeline) == identity.certificate.authority.startswith(OWN)
    assert 'id="event-lost"' not in page.text  # an auditor is offered no action


def report(client: Any, device: str, event: str, csrf: str | None) -> Any:
    form = {"event": event, **({"csrf": csrf} if csrf else {})}
    return client.post(f"/console/devices/{device}/events", form)


def device_state(pki: PKI, device: str) -> DeviceState:
    return pki.devices.get(device).state


def test_lost_and_found_from_the_console(world: World, console_app: Any) -> None:
    client = signed_in(console_app, world, OWN, Role.OPERATOR)
    try:
        csrf = client.csrf(f"/console/devices/{world.device}")
        assert report(client, world.device, "lost", None).status_code == 403  # no token
        assert device_state(world.pki, world.device) is DeviceState.ACTIVE
        start = last_audit_seq(world.pki)
        answer = report(client, world.device, "lost", csrf)
        assert answer.status_code == 303
        assert device_state(world.pki, world.device) is DeviceState.LOST
        [entry] = [e for e in world.pki.audit.entries(start, None)
                   if e.record.action == "device.lost"]
        assert entry.record.actor.startswith("principal:") and entry.record.actor.endswith(OWN)
        api = client.get(f"/api/v1/devices/{world.device}",
                         headers={"Authorization": f"Bearer {world.key(OWN, Role.OPERATOR)}"})
        statuses = {i["stage"]: i["status"] for i in api.json()["history"]}
        assert statuses["operational"] == "on-hold"
        page = client.get(answer.headers["location"])
        assert "Reported lost: the device is now lost." in page.text
        assert 'id="event-found"' in page.text
        assert report(client, world.device, "found", csrf).status_code == 303
        assert device_state(world.pki, world.device) is DeviceState.ACTIVE
        again = report(client, world.device, "found", csrf)
        assert again.status_code == 409 and "not allowed" in again.text
    finally:
        client.close()


def test_an_auditor_cannot_act_and_another_organization_sees_nothing(world: World,
                                                                     console_app: Any) -> None:
    auditor = signed_in(console_app, world, OWN, Role.AUDITOR)
    other = signed_in(console_app, world, OTHER, Role.ADMIN)
    try:
        refused = report(auditor, world.device, "lost", auditor.csrf())
        assert refused.status_code == 403
        assert device_state(world.pki, world.device) is DeviceState.ACTIVE
        assert other.get(f"/console/devices/{world.device}").status_code == 404
        assert world.device not in other.get("/console/devices").text
        hidden = report(other, world.device, "stolen", other.csrf())
        assert hidden.status_code == 404
        assert device_state(world.pki, world.device) is DeviceState.ACTIVE
    finally:
        auditor.close()
        other.close()
