"""Idempotency keys on creating POSTs, and the pagination envelope."""

from __future__ import annotations

from iotpki.core.integration.principal import Role
from tests.api.conftest import OWN, World

REGISTRATIONS = "/api/v1/registrations"
BODY = {"authority": "operatorco-operations", "profile": "operational",
        "method": "one-time-secret", "domain": "building-42.operator.example"}


def _count(world: World) -> int:
    return len(world.pki.registrations.find(OWN, limit=10_000))


def test_same_key_same_body_gives_the_first_response_once(world: World) -> None:
    key, before = world.key(OWN, Role.REGISTRAR), _count(world)
    headers = {"Idempotency-Key": "crm-order-17"}
    first = world.client.post(REGISTRATIONS, key, json=BODY, headers=headers)
    again = world.client.post(REGISTRATIONS, key, json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same registration, and its secret once more
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(world) == before + 1


def test_same_key_other_body_is_refused(world: World) -> None:
    key, headers = world.key(OWN, Role.REGISTRAR), {"Idempotency-Key": "k"}
    assert world.client.post(REGISTRATIONS, key, json=BODY, headers=headers).status_code == 201
    before = _count(world)
    other = world.client.post(REGISTRATIONS, key, json={**BODY, "lifetime": "2d"},
                              headers=headers)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:iotpki:problem:idempotency-key-reused"
    assert _count(world) == before


def test_keys_belong_to_one_principal(world: World) -> None:
    headers = {"Idempotency-Key": "shared"}
    first = world.client.post(REGISTRATIONS, world.key(OWN, Role.REGISTRAR), json=BODY,
                              headers=headers)
    second = world.client.post(REGISTRATIONS, world.key(OWN, Role.ADMIN), json=BODY,
                               headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_a_failed_request_is_not_remembered(world: World) -> None:
    key, headers = world.key(OWN, Role.REGISTRAR), {"Idempotency-Key": "retry-me"}
    bad = world.client.post(REGISTRATIONS, key, json={**BODY, "profile": "nope"},
                            headers=headers)
    assert bad.status_code == 404
    good = world.client.post(REGISTRATIONS, key, json={**BODY, "profile": "nope"},
                             headers=headers)
    assert good.status_code == 404  # tried again, not replayed
    assert "Idempotent-Replayed" not in good.headers


def test_bulk_create_is_idempotent_too(world: World) -> None:
    key, headers = world.key(OWN, Role.ADMIN), {"Idempotency-Key": "batch-1"}
    body = {"registrations": [BODY] * 3}
    first = world.client.post(f"{REGISTRATIONS}/bulk", key, json=body, headers=headers)
    again = world.client.post(f"{REGISTRATIONS}/bulk", key, json=body, headers=headers)
    assert first.status_code == 201 and len(first.json()["items"]) == 3
    assert again.json() == first.json()


def test_pages_walk_every_item_once(world: World) -> None:
    key, before = world.key(OWN, Role.AUDITOR), _count(world)
    world.client.post(f"{REGISTRATIONS}/bulk", world.key(OWN, Role.ADMIN),
                      json={"registrations": [BODY] * 6})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(REGISTRATIONS, key, params=params).json()
        assert page["limit"] == 3 and len(page["items"]) <= 3
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == _count(world) == before + 6


def test_audit_pages_follow_sequence_numbers(world: World) -> None:
    key = world.key(OWN, Role.AUDITOR)
    first = world.client.get("/api/v1/audit", key, params={"limit": 2}).json()
    second = world.client.get("/api/v1/audit", key,
                              params={"limit": 2, "cursor": first["next_cursor"]}).json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_a_forged_cursor_is_a_problem(world: World) -> None:
    response = world.client.get(REGISTRATIONS, world.key(OWN, Role.AUDITOR),
                                params={"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
