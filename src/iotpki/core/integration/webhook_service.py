"""Webhooks: subscriptions (per organization, per event type) and their delivery.

Events are written to the outbox (`events` table) in the transaction that caused them.
The dispatcher then works in two steps, each safe against a crash at any point:

1. fan-out: in one transaction it takes undispatched events (locked; other nodes skip
   them), creates one delivery row per matching subscription and marks the events
   dispatched. A crash before the commit leaves the events undispatched; the unique
   (subscription, event) pair keeps two nodes from making the same delivery twice.
2. delivery: it claims due deliveries by moving their next attempt one lease ahead
   (compare-and-set, committed before sending), POSTs them signed, and records the result:
   delivered, a retry after exponential backoff, or dead after the last attempt. A node
   that crashes mid-send leaves the row to be retried when the lease ends, with the same
   delivery id (`Webhook-Id`), so the receiver can drop the repeat.

Tenant rule: a subscription receives only events about its organization's objects (a
device it owns, a certificate or refusal of one of its authorities).
"""

from __future__ import annotations

import fnmatch
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError
from iotpki.core.events import StoredEvent
from iotpki.core.integration.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    DeliveryPosition,
    DeliveryStatus,
    RetryPolicy,
    WebhookDelivery,
    WebhookSubscription,
    sign_payload,
)
from iotpki.core.keyring import SecretSealer
from iotpki.core.lifecycle.transitions import LifecycleEvent
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.registration import new_registration_id
from iotpki.wire.errors import PKIError

EVENT_TYPES = (
    "certificate.issued", "certificate.renewed", "certificate.revoked", "certificate.held",
    "certificate.released", "certificate.expiring", "enrollment.refused",
    *(f"device.{e.value}" for e in LifecycleEvent),
)


class WebhookSendError(PKIError):
    """No HTTP answer: connection refused, timeout, TLS failure."""


class WebhookSender(Protocol):
    """The HTTP side, outside the core (`iotpki.protocols.webhook`)."""

    def send(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        """POST `body`; return the HTTP status. Raise `WebhookSendError` if none came."""
        ...


@dataclass(frozen=True)
class CreatedSubscription:
    subscription: WebhookSubscription
    secret: str  # the HMAC key, shown once; stored sealed


def check_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    """Names from EVENT_TYPES, or patterns matching some of them ("device.*", "*")."""
    if not event_types:
        raise ConfigurationError("a subscription names at least one event type")
    for pattern in event_types:
        if not fnmatch.filter(EVENT_TYPES, pattern):
            raise ConfigurationError(f"unknown event type {pattern!r}; known: "
                                     f"{', '.join(EVENT_TYPES)} (or patterns like device.*)")
    return tuple(dict.fromkeys(event_types))


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"webhook URL {url!r}: an absolute http(s) URL is required")


class WebhookService:
    """Subscriptions of an organization: add (the secret is shown once), list, remove, and
    the deliveries made for them."""

    def __init__(self, uow: UnitOfWorkFactory, sealer: SecretSealer | None, clock: Clock) -> None:
        self._uow = uow
        self._sealer = sealer
        self._clock = clock

    def add(self, organization: str, url: str, event_types: Sequence[str],
            actor: str) -> CreatedSubscription:
        if self._sealer is None:
            raise ConfigurationError("webhook secrets are sealed under the CA key passphrase "
                                     "(IOTPKI_CA_PASSPHRASE); none is set")
        _check_url(url)
        now = self._clock.now()
        secret = secrets.token_urlsafe(32)
        subscription = WebhookSubscription(new_registration_id(), organization, url,
                                           check_event_types(event_types), now, actor)
        with self._uow() as uow:
            if uow.organizations.get(organization) is None:
                raise NotFoundError(f"unknown organization {organization!r}")
            uow.webhooks.add(subscription, self._sealer.seal(secret.encode()))
            append_audit(uow.audit, now, AuditRecord(
                "webhook.add", "success", actor, subscription.id,
                {"organization": organization, "url": url,
                 "event_types": list(subscription.event_types)}))
            uow.commit()
        return CreatedSubscription(subscription, secret)

    def get(self, subscription_id: str, organization: str | None = None) -> WebhookSubscription:
        with self._uow() as uow:
            subscription = uow.webhooks.get(subscription_id)
        if subscription is None or organization not in (None, subscription.organization):
            raise NotFoundError(f"unknown webhook subscription {subscription_id!r}")
        return subscription

    def find(self, organization: str | None = None) -> list[WebhookSubscription]:
        """Subscriptions not removed, oldest first."""
        with self._uow() as uow:
            return uow.webhooks.subscriptions(organization)

    def remove(self, subscription_id: str, actor: str,
               organization: str | None = None) -> WebhookSubscription:
        """Stop deliveries (pending ones end as dead); the record stays for the audit."""
        self.get(subscription_id, organization)
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.webhooks.remove(subscription_id, now):
                raise NotFoundError(f"unknown webhook subscription {subscription_id!r}")
            append_audit(uow.audit, now, AuditRecord(
                "webhook.remove", "success", actor, subscription_id, {}))
            uow.commit()
        return self.get(subscription_id)

    def deliveries(self, organization: str | None = None, subscription: str | None = None,
                   status: DeliveryStatus | None = None, limit: int = 100,
                   offset: int = 0) -> list[WebhookDelivery]:
        with self._uow() as uow:
            return uow.webhooks.deliveries(organization, subscription, status, limit, offset)

    def delivery_page(self, organization: str, status: DeliveryStatus | None = None,
                      before: DeliveryPosition | None = None,
                      limit: int = 50) -> list[WebhookDelivery]:
        """The organization's delivery log, newest first, one keyset page."""
        with self._uow() as uow:
            return uow.webhooks.delivery_page(organization, status, before, limit)

    def retry(self, delivery_id: str, actor: str,
              organization: str | None = None) -> WebhookDelivery:
        """Attempt an undelivered delivery again now, with the same delivery id (receivers
        drop a repeat by it). A dead one gets one more attempt; it stays dead if that
        fails too, since its attempts are spent."""
        now = self._clock.now()
        with self._uow() as uow:
            found = uow.webhooks.delivery(delivery_id)
            if found is None or organization not in (None, found[1]):
                raise NotFoundError(f"unknown webhook delivery {delivery_id!r}")
            delivery, owner = found
            if not uow.webhooks.retry(delivery_id, now):
                raise ConflictError(f"webhook delivery {delivery_id} was delivered already")
            append_audit(uow.audit, now, AuditRecord(
                "webhook.retry", "success", actor, delivery_id,
                {"organization": owner, "subscription": delivery.subscription,
                 "previous_status": delivery.status.value, "attempts": delivery.attempts}))
            uow.commit()
        return replace(delivery, status=DeliveryStatus.PENDING, next_attempt_at=now)


class WebhookDispatcher:
    """Turns outbox events into deliveries and delivers them; every node runs one."""

    def __init__(self, uow: UnitOfWorkFactory, sealer: SecretSealer | None,
                 sender: WebhookSender, clock: Clock, policy: RetryPolicy | None = None,
                 batch: int = 100) -> None:
        self._uow = uow
        self._sealer = sealer
        self._sender = sender
        self._clock = clock
        self.policy = policy or RetryPolicy()
        self._batch = batch

    def run_once(self) -> tuple[int, int]:
        """Fan out new events, then attempt due deliveries: (created, attempted)."""
        return self.fan_out(), self.deliver_due()

    def fan_out(self) -> int:
        now = self._clock.now()
        with self._uow() as uow:
            events = uow.events.undispatched(self._batch)
            if not events:
                return 0
            subscriptions = uow.webhooks.active()
            organizations: dict[str, str | None] = {}
            deliveries = [self._delivery(s, e, now) for e in events
                          for s in subscriptions if _wants(s, e, _organization(uow, e, organizations))]
            uow.webhooks.add_deliveries(deliveries)
            uow.events.mark_dispatched([e.id for e in events], now)
            uow.commit()
        return len(deliveries)

    @staticmethod
    def _delivery(subscription: WebhookSubscription, event: StoredEvent,
                  now: datetime) -> WebhookDelivery:
        return WebhookDelivery(new_registration_id(), subscription.id, event.id, event.type,
                               DeliveryStatus.PENDING, 0, now, now)

    def deliver_due(self) -> int:
        now = self._clock.now()
        with self._uow() as uow:
            claimed = uow.webhooks.claim_due(now, now + self.policy.lease, self._batch)
            uow.commit()
        for delivery in claimed:
            self._attempt(delivery)
        return len(claimed)

    def _attempt(self, delivery: WebhookDelivery) -> None:
        with self._uow() as uow:
            event = uow.events.get(delivery.event_id)
            subscription = uow.webhooks.get(delivery.subscription)
            sealed = uow.webhooks.sealed_secret(delivery.subscription)
        if event is None or subscription is None or subscription.removed_at is not None:
            return self._record(delivery, "the subscription was removed", final=True)
        if self._sealer is None:
            return self._record(delivery, "no passphrase to unseal the webhook secret")
        try:
            secret = self._sealer.unseal(sealed)
        except PKIError as exc:  # sealed under another passphrase: counted as a failure
            return self._record(delivery, f"cannot unseal the webhook secret: {exc}")
        body = encode_body(delivery, event)
        timestamp = int(self._clock.now().timestamp())
        headers = {"Content-Type": "application/json", "User-Agent": "iotpki-webhook",
                   ID_HEADER: delivery.id, SIGNATURE_HEADER: sign_payload(secret, timestamp, body)}
        try:
            status = self._sender.send(subscription.url, headers, body, self.policy.timeout)
        except WebhookSendError as exc:
            return self._record(delivery, str(exc))
        self._record(delivery, None if 200 <= status < 300 else f"HTTP {status}")

    def _record(self, delivery: WebhookDelivery, error: str | None, final: bool = False) -> None:
        now = self._clock.now()
        attempts = delivery.attempts + 1
        if error is None:
            done = replace(delivery, status=DeliveryStatus.DELIVERED, attempts=attempts,
                           delivered_at=now, last_error=None)
        elif final or attempts >= self.policy.max_attempts:
            done = replace(delivery, status=DeliveryStatus.DEAD, attempts=attempts,
                           last_error=error)
        else:
            done = replace(delivery, attempts=attempts, last_error=error,
                           next_attempt_at=now + self.policy.delay(attempts))
        with self._uow() as uow:
            uow.webhooks.record_attempt(done)
            uow.commit()


def encode_body(delivery: WebhookDelivery, event: StoredEvent) -> bytes:
    document = {"id": delivery.id, "event_id": event.id, "type": event.type,
                "at": event.at.isoformat(), "data": dict(event.payload)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def _wants(subscription: WebhookSubscription, event: StoredEvent,
           organization: str | None) -> bool:
    return (organization == subscription.organization and event.at >= subscription.created_at
            and any(fnmatch.fnmatchcase(event.type, p) for p in subscription.event_types))


def _organization(uow: UnitOfWork, event: StoredEvent, cache: dict[str, str | None]) -> str | None:
    """Whose object the event is about: the device's owner named in the event, else the
    organization of the authority that issued (or refused) the certificate."""
    payload: Mapping[str, Any] = event.payload
    if isinstance(payload.get("organization"), str):
        return str(payload["organization"])
    authority = payload.get("authority") or str(payload.get("certificate") or "").partition(":")[0]
    if not authority:
        return None
    if authority not in cache:
        found = uow.authorities.get(str(authority))
        cache[authority] = found.organization if found is not None else None
    return cache[authority]
