"""Webhook subscriptions and the per-subscription delivery outbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.errors import ConflictError, NotFoundError
from iotpki.core.integration.webhook import (
    DeliveryPosition,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import organizations, webhook_deliveries, webhook_subscriptions

S, D = webhook_subscriptions.c, webhook_deliveries.c
# Writes (store.prepared: the one write path).
_ADD = Prepared(webhook_subscriptions.insert().inline(), (
    "id", "url", "organization_id", "event_types", "secret_sealed", "created_at", "created_by"))
_REMOVE = Prepared(update(webhook_subscriptions).where(
    S.id == bindparam("subscription"), S.removed_at.is_(None)).values(removed_at=bindparam("at")))
_ADD_DELIVERY = Prepared(webhook_deliveries.insert().inline(), (
    "id", "subscription_id", "event_id", "event_type", "status", "attempts", "next_attempt_at",
    "created_at"))
_CLAIM = Prepared(update(webhook_deliveries).where(
    D.id == bindparam("delivery"), D.status == DeliveryStatus.PENDING.value,
    D.next_attempt_at == bindparam("due")).values(next_attempt_at=bindparam("lease_until")))
_RECORD_ATTEMPT = Prepared(update(webhook_deliveries).where(D.id == bindparam("delivery")).values(
    status=bindparam("status"), attempts=bindparam("attempts"),
    next_attempt_at=bindparam("next_attempt"), last_error=bindparam("error"),
    delivered_at=bindparam("delivered")))
# A manual retry: an undelivered delivery is due now (a delivered one stays as it is).
_RETRY = Prepared(update(webhook_deliveries).where(
    D.id == bindparam("delivery"), D.status != DeliveryStatus.DELIVERED.value).values(
    status=DeliveryStatus.PENDING.value, next_attempt_at=bindparam("now")))


class SQLWebhookRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, subscription: WebhookSubscription, secret_sealed: bytes) -> None:
        _ADD.execute(self._conn, {
            "id": subscription.id, "url": subscription.url,
            "organization_id": self._ids.id_of(self._conn, organizations,
                                               subscription.organization),
            "event_types": json.dumps(list(subscription.event_types)),
            "secret_sealed": secret_sealed, "created_at": subscription.created_at,
            "created_by": subscription.created_by})

    def get(self, subscription_id: str) -> WebhookSubscription | None:
        row = self._conn.execute(select(webhook_subscriptions).where(
            S.id == subscription_id)).first()
        return self._subscription(row) if row is not None else None

    def sealed_secret(self, subscription_id: str) -> bytes:
        sealed = self._conn.execute(select(S.secret_sealed).where(
            S.id == subscription_id)).scalar()
        if sealed is None:
            raise NotFoundError(f"unknown webhook subscription {subscription_id!r}")
        return bytes(sealed)

    def active(self) -> list[WebhookSubscription]:
        return self.subscriptions(None)

    def subscriptions(self, organization: str | None) -> list[WebhookSubscription]:
        stmt = select(webhook_subscriptions).where(S.removed_at.is_(None))
        if organization is not None:
            stmt = stmt.where(S.organization_id == self._ids.id_of(
                self._conn, organizations, organization))
        rows = self._conn.execute(stmt.order_by(S.created_at, S.id)).all()
        return [self._subscription(r) for r in rows]

    def remove(self, subscription_id: str, at: datetime) -> bool:
        return _REMOVE.execute(self._conn, {"subscription": subscription_id, "at": at}) == 1

    def _subscription(self, row: Row[Any]) -> WebhookSubscription:
        return WebhookSubscription(
            row.id, self._ids.label_of(self._conn, organizations, row.organization_id), row.url,
            tuple(json.loads(row.event_types)), row.created_at, row.created_by, row.removed_at)

    def add_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        if not deliveries:
            return
        try:
            _ADD_DELIVERY.execute_many(self._conn, [{
                "id": d.id, "subscription_id": d.subscription, "event_id": d.event_id,
                "event_type": d.event_type, "status": d.status.value, "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at, "created_at": d.created_at,
            } for d in deliveries])
        except IntegrityError as exc:
            raise ConflictError("another node made these webhook deliveries already") from exc

    def claim_due(self, now: datetime, lease_until: datetime,
                  limit: int) -> list[WebhookDelivery]:
        rows = self._conn.execute(select(webhook_deliveries).where(
            D.status == DeliveryStatus.PENDING.value, D.next_attempt_at <= now)
            .order_by(D.next_attempt_at, D.id).limit(limit)
            .with_for_update(skip_locked=True)).all()
        claimed = []
        for row in rows:
            if _CLAIM.execute(self._conn, {"delivery": row.id, "due": row.next_attempt_at,
                                           "lease_until": lease_until}) == 1:
                claimed.append(_delivery(row))
        return claimed

    def record_attempt(self, delivery: WebhookDelivery) -> None:
        _RECORD_ATTEMPT.execute(self._conn, {
            "delivery": delivery.id, "status": delivery.status.value,
            "attempts": delivery.attempts, "next_attempt": delivery.next_attempt_at,
            "error": delivery.last_error, "delivered": delivery.delivered_at})

    def deliveries(self, organization: str | None, subscription: str | None,
                   status: DeliveryStatus | None, limit: int,
                   offset: int) -> list[WebhookDelivery]:
        stmt = select(webhook_deliveries).join(
            webhook_subscriptions, S.id == D.subscription_id)
        if organization is not None:
            stmt = stmt.where(S.organization_id == self._ids.id_of(
                self._conn, organizations, organization))
        if subscription is not None:
            stmt = stmt.where(D.subscription_id == subscription)
        if status is not None:
            stmt = stmt.where(D.status == status.value)
        rows = self._conn.execute(stmt.order_by(D.created_at.desc(), D.event_id.desc())
                                  .limit(limit).offset(offset)).all()
        return [_delivery(r) for r in rows]

    def delivery_page(self, organization: str, status: DeliveryStatus | None,
                      before: DeliveryPosition | None, limit: int) -> list[WebhookDelivery]:
        stmt = select(webhook_deliveries).join(
            webhook_subscriptions, S.id == D.subscription_id).where(
            S.organization_id == self._ids.id_of(self._conn, organizations, organization))
        if status is not None:
            stmt = stmt.where(D.status == status.value)
        if before is not None:
            stmt = stmt.where(or_(D.created_at < before.created_at, and_(
                D.created_at == before.created_at, D.id < before.delivery_id)))
        rows = self._conn.execute(stmt.order_by(D.created_at.desc(), D.id.desc())
                                  .limit(limit)).all()
        return [_delivery(r) for r in rows]

    def delivery(self, delivery_id: str) -> tuple[WebhookDelivery, str] | None:
        row = self._conn.execute(select(webhook_deliveries, S.organization_id).join(
            webhook_subscriptions, S.id == D.subscription_id).where(D.id == delivery_id)).first()
        if row is None:
            return None
        return _delivery(row), self._ids.label_of(self._conn, organizations, row.organization_id)

    def retry(self, delivery_id: str, now: datetime) -> bool:
        return _RETRY.execute(self._conn, {"delivery": delivery_id, "now": now}) == 1


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        row.id, row.subscription_id, int(row.event_id), row.event_type,
        DeliveryStatus(row.status), row.attempts, row.next_attempt_at, row.created_at,
        row.last_error, row.delivered_at)
