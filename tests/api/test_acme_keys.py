"""ACME External Account Binding keys over REST (docs/acme.md): a registrar makes one for
its own organization; the ACME account created with it is bound to that organization."""

from __future__ import annotations

import base64

from starlette.applications import Starlette

from iotpki.app import acme_server
from iotpki.core.integration.principal import Role
from iotpki.protocols.acme.routes import routes
from iotpki.wire.keys import generate_private_key
from tests.acme.client import ACMEClient
from tests.acme.conftest import BASE, InProcess
from tests.api.conftest import OWN, World

EAB_KEYS = "/api/v1/acme/eab-keys"


def test_registrar_makes_an_eab_key_that_binds_an_account(world: World) -> None:
    made = world.client.post(EAB_KEYS, world.key(OWN, Role.REGISTRAR), json={})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["organization"] == OWN and body["key_id"].startswith("eab-")
    http = InProcess(Starlette(routes=routes(acme_server(world.pki))), BASE)
    try:
        client = ACMEClient(http, BASE + "/acme/operations/directory",
                            generate_private_key("ec-p256"))
        hmac_key = base64.urlsafe_b64decode(body["hmac_key"] + "=" * (-len(body["hmac_key"]) % 4))
        created = client.new_account((body["key_id"], hmac_key))
        assert created.status_code == 201, created.text
        assert created.json()["externalAccountBinding"] == {"kid": body["key_id"]}
    finally:
        http.close()
    audit = [e.record for e in world.pki.audit.entries(limit=None)
             if e.record.action == "acme.account.create"]
    assert audit[-1].details["organization"] == OWN


def test_auditor_may_not_make_eab_keys(world: World) -> None:
    refused = world.client.post(EAB_KEYS, world.key(OWN, Role.AUDITOR), json={})
    assert refused.status_code == 403
    assert world.client.post(EAB_KEYS, None, json={}).status_code == 401
