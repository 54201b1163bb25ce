"""Every client mistake is a 4xx RFC 9457 problem document (RFC 9457 §3), never a 5xx."""

from __future__ import annotations

import pytest

from iotpki.core.integration.principal import Role
from tests.api.conftest import OWN, World

MEMBERS = {"type", "title", "status", "detail", "instance"}


def _assert_problem(response, status: int, kind: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= MEMBERS
    assert body["status"] == status
    assert body["type"] == f"urn:iotpki:problem:{kind}"
    return body


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer iotpki_0000_nope"}, {"Authorization": "Bearer garbage"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
], ids=["none", "unknown key", "not a key", "basic"])
def test_without_valid_credentials_401(world: World, headers: dict[str, str]) -> None:
    response = world.client.get("/api/v1/certificates", headers=headers)
    _assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_stops_working(world: World) -> None:
    key = world.key(OWN, Role.ADMIN)
    principal_id = key.split("_")[1]
    world.pki.principals.revoke(principal_id, "test")
    _assert_problem(world.client.get("/api/v1/certificates", key), 401, "unauthenticated")


def test_validation_errors_are_problems_with_their_locations(world: World) -> None:
    response = world.client.post("/api/v1/registrations", world.key(OWN, Role.ADMIN),
                                 json={"authority": "Not A Label", "method": "telepathy",
                                       "surprise": 1})
    body = _assert_problem(response, 422, "validation-error")
    locations = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "authority") in locations
    assert ("body", "method") in locations
    assert ("body", "surprise") in locations  # unknown fields are refused, not ignored


def test_malformed_json_is_a_problem(world: World) -> None:
    response = world.client.post("/api/v1/registrations", world.key(OWN, Role.ADMIN),
                                 content=b"{not json", headers={"content-type": "application/json"})
    _assert_problem(response, 422, "validation-error")


def test_unknown_path_and_method(world: World) -> None:
    key = world.key(OWN, Role.ADMIN)
    _assert_problem(world.client.get("/api/v1/nothing-here", key), 404, "not-found")
    _assert_problem(world.client.request("DELETE", "/api/v1/certificates", key), 405,
                    "method-not-allowed")


def test_core_refusals_map_to_problems(world: World) -> None:
    key = world.key(OWN, Role.ADMIN)
    unowned_domain = world.client.post("/api/v1/registrations", key, json={
        "authority": "operatorco-operations", "profile": "operational", "method": "manual",
        "domain": "elsewhere.example"})
    _assert_problem(unowned_domain, 422, "invalid-request")
    bad_subject = world.client.post("/api/v1/registrations", key, json={
        "authority": "operatorco-operations", "profile": "operational", "method": "manual",
        "subject": "this is not a DN"})
    _assert_problem(bad_subject, 422, "invalid-request")
    cancelled = world.client.post(f"/api/v1/registrations/{world.registration}/cancel", key)
    assert cancelled.status_code == 200
    again = world.client.post(f"/api/v1/registrations/{world.registration}/cancel", key)
    _assert_problem(again, 409, "conflict")


def test_a_manifest_refusal_says_why(world: World) -> None:
    key = world.key(OWN, Role.REGISTRAR)
    body = {"manifest": world.manifest, "authority": "operatorco-operations",
            "profile": "operational"}
    assert world.client.post("/api/v1/manifests/import", key, json=body).status_code == 201
    replay = world.client.post("/api/v1/manifests/import", key, json=body)
    assert _assert_problem(replay, 422, "manifest-refused")["reason"] == "replayed"
    garbage = world.client.post("/api/v1/manifests/import", key,
                                json={**body, "manifest": "bm90IGNtcw=="})
    assert _assert_problem(garbage, 422, "manifest-refused")["reason"] == "malformed"
    not_base64 = world.client.post("/api/v1/manifests/import", key,
                                   json={**body, "manifest": "****"})
    _assert_problem(not_base64, 422, "invalid-request")


def test_no_secret_or_hash_in_responses(world: World) -> None:
    key = world.key(OWN, Role.ADMIN)
    listed = world.client.get("/api/v1/registrations", key).text
    assert "secret_hash" not in listed and "pbkdf2" not in listed
    assert "key_hash" not in world.client.get("/api/v1/audit", key).text
