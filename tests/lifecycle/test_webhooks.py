"""Webhooks delivered to a real local HTTP receiver: HMAC signature, tenant rule, retries
with backoff, dead deliveries, and crash safety (the outbox is in the database)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from iotpki.app import PKI, build_pki, build_sealer
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.integration.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    DeliveryStatus,
    RetryPolicy,
    verify_signature,
)
from iotpki.core.integration.webhook_service import WebhookDispatcher
from iotpki.protocols.webhook.sender import HTTPWebhookSender
from tests.lifecycle.fleet import last_audit, operational_device
from tests.lifecycle.receiver import Receiver, webhook_receiver
from tests.servers import ManualClock

POLICY = RetryPolicy(max_attempts=3, base=timedelta(seconds=10), lease=timedelta(seconds=30),
                     timeout=5)


def dispatcher(pki: PKI, clock: ManualClock, policy: RetryPolicy = POLICY) -> WebhookDispatcher:
    return WebhookDispatcher(pki.database.unit_of_work, build_sealer(pki.settings),
                             HTTPWebhookSender(), clock, policy)


@pytest.fixture
def receiver() -> Receiver:
    with webhook_receiver() as running:
        yield running  # type: ignore[misc]


def test_signed_delivery_to_a_real_receiver_only_of_the_organizations_events(
        demo_pki: PKI, receiver: Receiver) -> None:
    created = demo_pki.webhooks.add("operatorco", receiver.url, ["device.*", "certificate.held"],
                                    "operatorco:admin")
    assert last_audit(demo_pki, "webhook.add").details["url"] == receiver.url
    assert created.secret not in json.dumps(last_audit(demo_pki, "webhook.add").details)
    fleet = operational_device(demo_pki)
    demo_pki.lifecycle.report(fleet.device_id, "lost", "operatorco:crm")
    clock = ManualClock()
    assert dispatcher(demo_pki, clock).run_once() == (2, 2)

    types = []
    for request in receiver.received:
        assert verify_signature(created.secret.encode(), request.headers[SIGNATURE_HEADER],
                                request.body, int(clock.now().timestamp()))
        assert not verify_signature(b"another secret", request.headers[SIGNATURE_HEADER],
                                    request.body, int(clock.now().timestamp()))
        document = json.loads(request.body)
        assert document["id"] == request.headers[ID_HEADER]
        types.append((document["type"], document["data"].get("certificate", "")))
    # OperatorCo gets its operational certificate's hold and the device event; the device
    # certificate's hold is DeviceCo's (its authority), not OperatorCo's.
    assert sorted(types) == sorted([
        ("certificate.held", f"operatorco-operations:{fleet.operational.record.serial_hex}"),
        ("device.lost", "")])
    deliveries = demo_pki.webhooks.deliveries(organization="operatorco")
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}
    assert {d.id for d in deliveries} == {r.headers[ID_HEADER] for r in receiver.received}
    assert demo_pki.webhooks.deliveries(organization="deviceco") == []


def test_retry_with_backoff_after_a_server_error_then_dead(
        demo_pki: PKI, receiver: Receiver) -> None:
    demo_pki.webhooks.add("operatorco", receiver.url, ["device.renewal_due"], "admin")
    fleet = operational_device(demo_pki)
    demo_pki.lifecycle.report(fleet.device_id, "renewal_due", "dms")
    clock = ManualClock()
    worker = dispatcher(demo_pki, clock)
    receiver.statuses = [500]
    assert worker.run_once() == (1, 1)
    (failed,) = demo_pki.webhooks.deliveries()
    assert (failed.status, failed.attempts, failed.last_error) == (DeliveryStatus.PENDING, 1,
                                                                   "HTTP 500")
    assert failed.next_attempt_at == clock.now() + timedelta(seconds=10)
    assert worker.run_once() == (0, 0)  # not due yet
    clock.advance(timedelta(seconds=10))
    assert worker.run_once() == (0, 1)
    (delivered,) = demo_pki.webhooks.deliveries()
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 2)
    ids = [r.headers[ID_HEADER] for r in receiver.received]
    assert ids == [delivered.id, delivered.id]  # a retry keeps the delivery id

    demo_pki.lifecycle.report(fleet.device_id, "renewal_due", "dms")
    receiver.statuses = [500, 503, 500]
    for wait in (0, 10, 20):  # base 10 s, doubled after each failure
        clock.advance(timedelta(seconds=wait))
        assert worker.run_once()[1] == 1
    dead = demo_pki.webhooks.deliveries(status=DeliveryStatus.DEAD)
    assert [(d.attempts, d.last_error) for d in dead] == [(3, "HTTP 500")]
    clock.advance(timedelta(days=1))
    assert worker.run_once() == (0, 0)


def test_unreachable_receiver_is_retried(demo_pki: PKI) -> None:
    with webhook_receiver() as gone:
        url = gone.url
    demo_pki.webhooks.add("operatorco", url, ["device.*"], "admin")
    fleet = operational_device(demo_pki)
    demo_pki.lifecycle.report(fleet.device_id, "renewal_due", "dms")
    dispatcher(demo_pki, ManualClock()).run_once()
    (failed,) = demo_pki.webhooks.deliveries()
    assert failed.status is DeliveryStatus.PENDING and "no answer" in (failed.last_error or "")


def test_a_new_dispatcher_delivers_what_a_crashed_one_left(
        demo_pki: PKI, receiver: Receiver) -> None:
    created = demo_pki.webhooks.add("operatorco", receiver.url, ["device.*"], "admin")
    fleet = operational_device(demo_pki)
    demo_pki.lifecycle.report(fleet.device_id, "lost", "crm")
    demo_pki.lifecycle.report(fleet.device_id, "found", "crm")
    clock = ManualClock()
    crashed = dispatcher(demo_pki, clock)
    assert crashed.fan_out() == 2
    # It claimed the deliveries, then died before sending (nothing recorded).
    with demo_pki.database.unit_of_work() as uow:
        assert len(uow.webhooks.claim_due(clock.now(), clock.now() + POLICY.lease, 10)) == 2
        uow.commit()
    demo_pki.lifecycle.report(fleet.device_id, "retired", "crm")  # not even fanned out

    restarted = build_pki(demo_pki.settings)  # another process on the same database
    try:
        survivor = dispatcher(restarted, clock)
        assert survivor.run_once() == (1, 1)  # the claimed ones wait for their lease to end
        clock.advance(POLICY.lease)
        assert survivor.run_once() == (0, 2)
        assert survivor.run_once() == (0, 0)
    finally:
        restarted.close()
    kinds = sorted(json.loads(r.body)["type"] for r in receiver.received)
    assert kinds == ["device.found", "device.lost", "device.retired"]
    assert len({r.headers[ID_HEADER] for r in receiver.received}) == 3
    assert all(verify_signature(created.secret.encode(), r.headers[SIGNATURE_HEADER], r.body,
                                int(clock.now().timestamp())) for r in receiver.received)


def test_subscriptions_are_validated_listed_and_removed(demo_pki: PKI, receiver: Receiver) -> None:
    with pytest.raises(ConfigurationError, match="unknown event type"):
        demo_pki.webhooks.add("operatorco", receiver.url, ["certificate.exploded"], "admin")
    with pytest.raises(ConfigurationError, match="http"):
        demo_pki.webhooks.add("operatorco", "ftp://example/", ["*"], "admin")
    created = demo_pki.webhooks.add("operatorco", receiver.url, ["*"], "admin")
    assert [s.id for s in demo_pki.webhooks.find("operatorco")] == [created.subscription.id]
    assert demo_pki.webhooks.find("deviceco") == []
    with pytest.raises(NotFoundError):
        demo_pki.webhooks.remove(created.subscription.id, "x", organization="deviceco")
    fleet = operational_device(demo_pki)
    demo_pki.lifecycle.report(fleet.device_id, "renewal_due", "dms")
    clock = ManualClock()
    dispatcher(demo_pki, clock).fan_out()
    demo_pki.webhooks.remove(created.subscription.id, "admin", organization="operatorco")
    assert demo_pki.webhooks.find("operatorco") == []
    dispatcher(demo_pki, clock).deliver_due()
    assert receiver.received == []
    assert {d.status for d in demo_pki.webhooks.deliveries()} == {DeliveryStatus.DEAD}
