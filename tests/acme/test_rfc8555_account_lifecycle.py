"""Account changes (RFC 8555 §7.3.2 update, §7.3.5 key rollover, §7.3.6 deactivation) and the
rate limits on new orders, in process."""

from __future__ import annotations

import json

from iotpki.app import acme_server
from iotpki.protocols.acme.routes import routes
from iotpki.protocols.acme.validation import ValidationSettings
from iotpki.wire.acme.jws import jwk_of, sign_jws
from iotpki.wire.keys import generate_private_key
from tests.acme.client import ACMEClient
from tests.acme.conftest import BASE, ACMEWorld, InProcess

ERR = "urn:ietf:params:acme:error:"


def roll(client: ACMEClient, new_key, old_key=None, account=None, nonce=True):  # type: ignore[no-untyped-def]
    url = client.directory["keyChange"]
    inner = sign_jws(new_key, {"account": account or client.kid,
                               "oldKey": jwk_of((old_key or client.key).public_key())},
                     url, "x" if not nonce else None)
    return client.post(url, json.dumps(inner).encode())


def test_s7_3_2_contact_update(acme: ACMEWorld) -> None:
    client = acme.account()
    answer = client.post(client.kid, {"contact": ["mailto:ops@operator.example"]})
    assert answer.json()["contact"] == ["mailto:ops@operator.example"]
    bad = client.post(client.kid, {"contact": ["tel:+1555"]})
    assert bad.json()["type"] == ERR + "unsupportedContact"


def test_s7_3_5_key_rollover(acme: ACMEWorld) -> None:
    client = acme.account()
    new_key = generate_private_key("ec-p256")
    answer = roll(client, new_key)
    assert answer.status_code == 200, answer.text
    old_key, client.key = client.key, new_key
    assert client.new_order("rolled.lifecycle.example").status_code == 201
    stale = ACMEClient(acme.http, client.directory_url, old_key, kid=client.kid)
    assert stale.new_order("stale.lifecycle.example").json()["type"] == ERR + "malformed"
    # the old key finds no account any more (§7.3.1)
    assert ACMEClient(acme.http, client.directory_url, old_key).new_account(
        onlyReturnExisting=True).json()["type"] == ERR + "accountDoesNotExist"


def test_s7_3_5_rollover_refusals(acme: ACMEWorld) -> None:
    client, other = acme.account(), acme.account()
    new_key = generate_private_key("ec-p256")
    assert roll(client, new_key, old_key=new_key).json()["type"] == ERR + "malformed"
    assert roll(client, new_key, account=other.kid).json()["type"] == ERR + "malformed"
    assert roll(client, new_key, nonce=False).json()["type"] == ERR + "malformed"
    taken = roll(client, other.key)  # the new key is another account's
    assert taken.status_code == 409


def test_s7_3_6_deactivated_account_is_refused(acme: ACMEWorld) -> None:
    client = acme.account()
    answer = client.post(client.kid, {"status": "deactivated"})
    assert answer.json()["status"] == "deactivated"
    refused = client.new_order("gone.lifecycle.example")
    assert refused.status_code == 403
    assert refused.json()["type"] == ERR + "unauthorized"


def test_rate_limit_per_account(acme: ACMEWorld) -> None:
    """A server of its own with one order per account and hour: the second is rateLimited."""
    from dataclasses import replace

    from starlette.applications import Starlette

    pki = acme.pki
    limited = replace(pki, settings=replace(pki.settings, acme_orders_per_hour=1))
    app = Starlette(routes=routes(acme_server(limited, ValidationSettings())))
    http = InProcess(app, BASE)
    try:
        client = ACMEClient(http, BASE + "/acme/directory", generate_private_key("ec-p256"))
        assert client.new_account().status_code == 201
        assert client.new_order("one.rate.example").status_code == 201
        second = client.new_order("two.rate.example")
        assert second.status_code == 429
        assert second.json()["type"] == ERR + "rateLimited"
    finally:
        http.close()
