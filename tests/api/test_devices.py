"""Devices over the API: the identity history, and lifecycle events acting on certificates."""

from __future__ import annotations

from iotpki.core.integration.principal import Role
from tests.api.conftest import OWN, World
from tests.lifecycle.fleet import add_organization


def test_detail_lists_the_identity_history(world: World) -> None:
    response = world.client.get(f"/api/v1/devices/{world.device}", world.key(OWN, Role.AUDITOR))
    assert response.status_code == 200, response.text
    device = response.json()
    assert device["owner"] == OWN and device["state"] == "active"
    stages = [i["stage"] for i in device["history"]]
    assert stages[0] == "component" and "device" in stages and stages[-1] == "operational"
    assert all(i["status"] == "good" for i in device["history"][1:])
    listed = world.client.get("/api/v1/devices", world.key(OWN, Role.AUDITOR),
                              params={"state": "active"}).json()["items"]
    assert world.device in [d["id"] for d in listed]


def test_lost_then_found_then_an_illegal_event(world: World) -> None:
    key, url = world.key(OWN, Role.OPERATOR), f"/api/v1/devices/{world.device}/events"
    lost = world.client.post(url, key, json={"event": "lost"},
                             headers={"Idempotency-Key": "ticket-1"})
    assert lost.status_code == 200, lost.text
    body = lost.json()
    assert body["device"]["state"] == "lost" and body["previous_state"] == "active"
    assert body["certificates"] and all(c["status"] == "on-hold" for c in body["certificates"])
    replay = world.client.post(url, key, json={"event": "lost"},
                               headers={"Idempotency-Key": "ticket-1"})
    assert replay.json() == body  # not applied twice (a second "lost" would be a 409)
    found = world.client.post(url, key, json={"event": "found"})
    assert found.json()["device"]["state"] == "active"
    assert all(c["status"] == "good" for c in found.json()["certificates"])
    retired = world.client.post(url, key, json={"event": "retired", "details": {"note": "EOL"}})
    assert retired.json()["device"]["state"] == "retired"
    again = world.client.post(url, key, json={"event": "found"})
    assert again.status_code == 409
    assert again.json()["type"] == "urn:iotpki:problem:conflict"


def test_owner_change_opens_a_registration_for_the_new_owner(world: World) -> None:
    add_organization(world.pki, "newco", "plant.newco.example")
    response = world.client.post(
        f"/api/v1/devices/{world.device}/events", world.key(OWN, Role.ADMIN),
        json={"event": "owner_change", "details": {"new_owner": "newco",
                                                   "domain": "plant.newco.example"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device"]["owner"] == "newco" and body["device"]["state"] == "registered"
    assert body["registration"]["organization"] == "newco"
    assert all(c["revocation_reason"] == "affiliationChanged" for c in body["certificates"])
    gone = world.client.get(f"/api/v1/devices/{world.device}", world.key(OWN, Role.ADMIN))
    assert gone.status_code == 404  # no longer OperatorCo's


def test_unknown_event_is_a_validation_problem(world: World) -> None:
    response = world.client.post(f"/api/v1/devices/{world.device}/events",
                                 world.key(OWN, Role.ADMIN), json={"event": "exploded"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
