"""Screen 10, integrations: the webhook delivery log (the organization's only, keyset-paged)
with its retry button, and the API principals with their revoke button; an auditor sees
both and acts on neither, another organization sees nothing of ours, a POST without the
session's CSRF token changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from iotpki.app import PKI, build_sealer
from iotpki.core.errors import AuthenticationError
from iotpki.core.integration.principal import Role
from iotpki.core.integration.webhook import DeliveryStatus, RetryPolicy
from iotpki.core.integration.webhook_service import WebhookDispatcher
from iotpki.protocols.console.screens import integrations
from iotpki.protocols.webhook.sender import HTTPWebhookSender
from tests.api.conftest import OTHER, OWN, World
from tests.console.conftest import signed_in
from tests.lifecycle.receiver import Receiver, webhook_receiver
from tests.servers import ManualClock

ONE_ATTEMPT = RetryPolicy(max_attempts=1, base=timedelta(seconds=10), timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def dead_delivery(pki: PKI, receiver: Receiver, device: str) -> tuple[str, WebhookDispatcher]:
    """One OperatorCo delivery the receiver refused on its only attempt."""
    pki.webhooks.add(OWN, receiver.url, ["device.*"], "test")
    pki.lifecycle.report(device, "renewal_due", "test")
    worker = WebhookDispatcher(pki.database.unit_of_work, build_sealer(pki.settings),
                               HTTPWebhookSender(), pki.clock, ONE_ATTEMPT)
    receiver.statuses = [500]
    assert worker.run_once() == (1, 1)
    [delivery] = pki.webhooks.deliveries(organization=OWN)
    assert delivery.status is DeliveryStatus.DEAD and delivery.last_error == "HTTP 500"
    return delivery.id, worker


def test_retry_a_dead_delivery_from_the_page(world: World, console_app: Any,
                                             receiver: Receiver) -> None:
    delivery, worker = dead_delivery(world.pki, receiver, world.device)
    retry = f"/console/integrations/deliveries/{delivery}/retry"
    admin = signed_in(console_app, world, OWN, Role.ADMIN)
    page = admin.get("/console/integrations?status=dead")
    assert page.status_code == 200
    assert receiver.url in page.text and "HTTP 500" in page.text and retry in page.text

    assert admin.post(retry, {}).status_code == 403  # no CSRF token
    assert world.pki.webhooks.deliveries(organization=OWN)[0].status is DeliveryStatus.DEAD

    answer = admin.post(retry, {"csrf": admin.csrf("/console/integrations")})
    assert answer.status_code == 303, answer.text
    assert "due again" in admin.get(answer.headers["location"]).text
    [pending] = world.pki.webhooks.deliveries(organization=OWN)
    assert pending.status is DeliveryStatus.PENDING
    entry = world.pki.audit.entries(limit=None)[-1]
    assert (entry.record.action, entry.record.target) == ("webhook.retry", delivery)
    assert entry.record.actor.endswith(f"@{OWN}")

    assert worker.deliver_due() == 1  # the receiver answers 200 now
    [delivered] = world.pki.webhooks.deliveries(organization=OWN)
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.id == delivery
    page = admin.get("/console/integrations")
    assert retry not in page.text  # nothing to retry once delivered
    assert admin.post(retry, {"csrf": admin.csrf()}).status_code == 409


def test_an_auditor_sees_but_cannot_act_and_another_organization_sees_nothing(
        world: World, console_app: Any, receiver: Receiver) -> None:
    delivery, _ = dead_delivery(world.pki, receiver, world.device)
    retry = f"/console/integrations/deliveries/{delivery}/retry"
    operator = next(p for p in world.pki.principals.list(OWN) if p.role is Role.OPERATOR)
    revoke = f"/console/integrations/principals/{operator.id}/revoke"

    auditor = signed_in(console_app, world, OWN, Role.AUDITOR)
    page = auditor.get("/console/integrations")
    assert receiver.url in page.text and operator.name in page.text
    assert retry not in page.text and revoke not in page.text
    csrf = auditor.csrf("/console/integrations")
    assert auditor.post(retry, {"csrf": csrf}).status_code == 403
    assert auditor.post(revoke, {"csrf": csrf}).status_code == 403

    stranger = signed_in(console_app, world, OTHER, Role.ADMIN)
    page = stranger.get("/console/integrations")
    assert page.status_code == 200
    assert receiver.url not in page.text and delivery not in page.text
    assert operator.id not in page.text
    csrf = stranger.csrf("/console/integrations")
    assert stranger.post(retry, {"csrf": csrf}).status_code == 404
    assert stranger.post(revoke, {"csrf": csrf}).status_code == 404

    assert world.pki.webhooks.deliveries(organization=OWN)[0].status is DeliveryStatus.DEAD
    assert world.pki.principals.get(operator.id).active


def test_an_admin_revokes_a_principal_but_not_itself(world: World, console_app: Any) -> None:
    admin = signed_in(console_app, world, OWN, Role.ADMIN)
    principals = {p.role: p for p in world.pki.principals.list(OWN)}
    own_id = world.key(OWN, Role.ADMIN).split("_")[1]
    page = admin.get("/console/integrations")
    assert all(p.name in page.text for p in principals.values())
    assert "_secret" not in page.text and world.key(OWN, Role.OPERATOR) not in page.text
    csrf = admin.csrf("/console/integrations")

    revoke = f"/console/integrations/principals/{principals[Role.OPERATOR].id}/revoke"
    assert admin.post(revoke, {}).status_code == 403  # no CSRF token
    assert world.pki.principals.get(principals[Role.OPERATOR].id).active
    assert admin.post(revoke, {"csrf": csrf}).status_code == 303
    with pytest.raises(AuthenticationError):
        world.pki.principals.authenticate_key(world.key(OWN, Role.OPERATOR))
    assert admin.post(revoke, {"csrf": csrf}).status_code == 409  # revoked already
    assert admin.post(f"/console/integrations/principals/{own_id}/revoke",
                      {"csrf": csrf}).status_code == 409
    assert world.pki.principals.get(own_id).active


def test_the_delivery_log_pages_by_keyset(world: World, console_app: Any, receiver: Receiver,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    world.pki.webhooks.add(OWN, receiver.url, ["device.*"], "test")
    world.pki.webhooks.add(OWN, receiver.url + "/second", ["device.*"], "test")
    for _ in range(3):
        world.pki.lifecycle.report(world.device, "renewal_due", "test")
    WebhookDispatcher(world.pki.database.unit_of_work, build_sealer(world.pki.settings),
                      HTTPWebhookSender(), ManualClock()).fan_out()
    every = world.pki.webhooks.deliveries(organization=OWN)
    assert len(every) == 6
    walked, before = [], None
    while True:
        page = world.pki.webhooks.delivery_page(OWN, before=before, limit=4)
        walked.extend(page)
        if len(page) < 4:
            break
        before = integrations.decode_position(integrations.encode_position(
            integrations.DeliveryPosition(page[-1].created_at, page[-1].id)))
    assert sorted(d.id for d in walked) == sorted(d.id for d in every)
    assert len({d.id for d in walked}) == 6
    assert world.pki.webhooks.delivery_page(OTHER) == []

    monkeypatch.setattr(integrations, "PAGE", 4)
    admin = signed_in(console_app, world, OWN, Role.ADMIN)
    first = admin.get("/console/integrations")
    link = first.text.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = admin.get(link.replace("&amp;", "&"))
    assert second.status_code == 200 and 'id="next-page"' not in second.text
    shown = [d.id for d in every if f"/deliveries/{d.id}/" in first.text + second.text]
    assert len(shown) == 6  # pending deliveries carry a retry button naming them
    assert admin.get("/console/integrations?cursor=bm90IGEgY3Vyc29y").status_code == 422
    assert admin.get("/console/integrations?status=lost").status_code == 422
