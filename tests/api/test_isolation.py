"""Authorization and tenant isolation for every endpoint and every role.

For each operation on OperatorCo's objects:
- an OperatorCo principal of each role gets the operation's success status if its role
  allows it, else 403 and nothing changes;
- a DeviceCo principal of each role never gets an OperatorCo object: object operations
  answer 403/404 (or 422 for a manifest addressed to OperatorCo), lists leave OperatorCo's
  items out, and OperatorCo's certificate, registration and registrations stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from iotpki.app import api_services, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.integration.principal import Role
from iotpki.protocols.rest.app import create_api
from iotpki.settings import Settings
from tests.api.conftest import OTHER, OWN, APIClient, World, build_world

ALL = frozenset(Role)


@pytest.fixture
def database_url() -> None:
    """SQLite only: access decisions do not depend on the database (the SQL filters are
    tested on both in test_certificates.py)."""
    return None


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for every test that asserts it changes nothing (each checks it did not)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("world"), allow_unencrypted_keys=True)
    pki = build_pki(settings)
    create_demo_hierarchy(pki)
    client = APIClient(create_api(api_services(pki)))
    try:
        yield build_world(pki, client)
    finally:
        client.close()
        pki.close()

ADMIN, REGISTRAR, OPERATOR, AUDITOR = Role.ADMIN, Role.REGISTRAR, Role.OPERATOR, Role.AUDITOR


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: Callable[[World], str]
    allowed: frozenset[Role]
    status: int
    body: Callable[[World], dict[str, Any]] | None = None
    lists: bool = False  # a list: other organizations get 200 without OperatorCo's items


def _serial(w: World) -> str:
    return f"{w.certificate.authority}/{w.certificate.serial_hex}"


def _registration_body(w: World) -> dict[str, Any]:
    return {"authority": "operatorco-operations", "profile": "operational",
            "method": "one-time-secret", "domain": "building-42.operator.example"}


OPERATIONS = [
    Operation("list organizations", "GET", lambda w: "/api/v1/organizations", ALL, 200,
              lists=True),
    Operation("get organization", "GET", lambda w: f"/api/v1/organizations/{OWN}", ALL, 200),
    Operation("list domains", "GET", lambda w: "/api/v1/domains", ALL, 200, lists=True),
    Operation("list authorities", "GET", lambda w: "/api/v1/authorities", ALL, 200, lists=True),
    Operation("get authority", "GET", lambda w: "/api/v1/authorities/operatorco-operations",
              ALL, 200),
    Operation("list profiles", "GET", lambda w: "/api/v1/profiles", ALL, 200, lists=True),
    Operation("get profile", "GET", lambda w: "/api/v1/profiles/operational", ALL, 200,
              lists=True),
    Operation("list registrations", "GET", lambda w: "/api/v1/registrations", ALL, 200,
              lists=True),
    Operation("get registration", "GET", lambda w: f"/api/v1/registrations/{w.registration}",
              ALL, 200),
    Operation("create registration", "POST", lambda w: "/api/v1/registrations",
              frozenset({ADMIN, REGISTRAR}), 201, _registration_body),
    Operation("create registrations", "POST", lambda w: "/api/v1/registrations/bulk",
              frozenset({ADMIN, REGISTRAR}), 201,
              lambda w: {"registrations": [_registration_body(w)] * 2}),
    Operation("cancel registration", "POST",
              lambda w: f"/api/v1/registrations/{w.registration}/cancel",
              frozenset({ADMIN, REGISTRAR}), 200),
    Operation("export manifest", "POST", lambda w: "/api/v1/manifests/export",
              frozenset({ADMIN, REGISTRAR}), 201,
              lambda w: {"recipient": "chipco", "authority": "operatorco-operations"}),
    Operation("import manifest", "POST", lambda w: "/api/v1/manifests/import",
              frozenset({ADMIN, REGISTRAR}), 201,
              lambda w: {"manifest": w.manifest, "authority": "operatorco-operations",
                         "profile": "operational"}),
    Operation("list certificates", "GET", lambda w: "/api/v1/certificates", ALL, 200,
              lists=True),
    Operation("list certificates of an organization", "GET",
              lambda w: f"/api/v1/certificates?organization={OWN}", ALL, 200),
    Operation("list certificates of an authority", "GET",
              lambda w: "/api/v1/certificates?authority=operatorco-operations", ALL, 200),
    Operation("get certificate", "GET", lambda w: f"/api/v1/certificates/{_serial(w)}", ALL,
              200),
    Operation("revoke certificate", "POST", lambda w: f"/api/v1/certificates/{_serial(w)}/revoke",
              frozenset({ADMIN, OPERATOR}), 200, lambda w: {"reason": "keyCompromise"}),
    Operation("bulk revoke by authority", "POST", lambda w: "/api/v1/certificates/bulk-revoke",
              frozenset({ADMIN, OPERATOR}), 200,
              lambda w: {"filter": {"authority": "operatorco-operations"},
                         "reason": "cessationOfOperation"}),
    Operation("bulk revoke by profile", "POST", lambda w: "/api/v1/certificates/bulk-revoke",
              frozenset({ADMIN, OPERATOR}), 200,
              lambda w: {"filter": {"profile": "operational"}, "reason": "superseded"}),
    Operation("list devices", "GET", lambda w: "/api/v1/devices", ALL, 200, lists=True),
    Operation("list devices in a state", "GET", lambda w: "/api/v1/devices?state=active", ALL,
              200, lists=True),
    Operation("get device", "GET", lambda w: f"/api/v1/devices/{w.device}", ALL, 200),
    Operation("report lifecycle event", "POST", lambda w: f"/api/v1/devices/{w.device}/events",
              frozenset({ADMIN, OPERATOR}), 200, lambda w: {"event": "lost"}),
    Operation("read audit", "GET", lambda w: "/api/v1/audit", frozenset({ADMIN, AUDITOR}), 200,
              lists=True),
]


def _concerns_other(entry: dict[str, Any]) -> bool:
    """An audit entry DeviceCo may see: its own principals' acts, or naming DeviceCo."""
    details = entry["details"]
    return (entry["actor"].endswith(f"@{OTHER}") or entry["target"].startswith(OTHER)
            or OTHER in (details.get("organization"), details.get("sender"),
                         details.get("recipient")))


def _call(world: World, operation: Operation, organization: str, role: Role) -> httpx.Response:
    body = operation.body(world) if operation.body is not None else None
    return world.client.request(operation.method, operation.path(world),
                                world.key(organization, role), json=body)


def _operatorco_state(world: World) -> tuple[object, ...]:
    pki = world.pki
    return (pki.certificates.get(world.certificate.authority, world.certificate.serial).status,
            pki.registrations.get(world.registration).status,
            len(pki.registrations.find(OWN, limit=10_000)), pki.devices.get(world.device).state,
            [i.status for i in pki.devices.history(world.device)])


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
def test_roles_within_the_organization(world: World, operation: Operation, role: Role) -> None:
    before = _operatorco_state(world)
    response = _call(world, operation, OWN, role)
    if role in operation.allowed:
        assert response.status_code == operation.status, response.text
        if operation.method == "GET":
            assert _operatorco_state(world) == before
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert _operatorco_state(world) == before


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
def test_another_organization_sees_and_changes_nothing(shared_world: World,
                                                       operation: Operation, role: Role) -> None:
    world = shared_world
    before = _operatorco_state(world)
    response = _call(world, operation, OTHER, role)
    if operation.name == "read audit" and response.status_code == 200:
        assert all(_concerns_other(entry) for entry in response.json()["items"])
    elif operation.lists and response.status_code == 200:
        assert OWN not in response.text.replace("operatorco-operations", "")  # no item of it
        assert "operatorco-operations" not in response.text
    elif operation.name == "bulk revoke by profile" and role in operation.allowed:
        assert response.status_code == 200
        assert response.json()["revoked"] == 0  # DeviceCo has no operational certificates
    else:
        assert response.status_code in (403, 404, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert _operatorco_state(world) == before


def test_a_refused_role_is_told_which_roles_may(world: World) -> None:
    """Issue 22 item 8: a registrar's key cannot revoke; the 403 names the roles that can."""
    registrar = world.key(OWN, Role.REGISTRAR)
    response = world.client.post(f"/api/v1/certificates/{_serial(world)}/revoke", registrar,
                                 json={"reason": "keyCompromise"})
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == ("role registrar may not revoke (operatorco); a "
                                         "principal of role admin, operator may")
