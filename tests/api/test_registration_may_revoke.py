"""A registration whose secret may also revoke (CMP rr MAC-protected with it, RFC 9483
§4.2; docs/cmp.md): `may_revoke` in the REST API, off by default."""

from __future__ import annotations

from iotpki.core.integration.principal import Role
from tests.api.conftest import OWN, World

REGISTRATIONS = "/api/v1/registrations"
BODY = {"authority": "operatorco-operations", "profile": "operational",
        "method": "one-time-secret", "domain": "building-42.operator.example"}


def test_may_revoke_is_set_by_the_registrar_and_off_by_default(world: World) -> None:
    key = world.key(OWN, Role.REGISTRAR)
    plain = world.client.post(REGISTRATIONS, key, json=BODY)
    allowed = world.client.post(REGISTRATIONS, key, json={
        **BODY, "reference": "line-90", "uses": 10, "may_revoke": True})
    assert (plain.status_code, allowed.status_code) == (201, 201), allowed.text
    assert (plain.json()["may_revoke"], allowed.json()["may_revoke"]) == (False, True)
    assert world.pki.registrations.get(allowed.json()["id"]).may_revoke
    assert not world.pki.registrations.get(plain.json()["id"]).may_revoke
