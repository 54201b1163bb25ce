"""Webhook subscriptions and deliveries: the records, the signature and the retry policy.

A delivery is an HTTP POST of a JSON body with these headers (docs/webhooks.md):

    Webhook-Id: <delivery id>            the same on every retry: receivers dedupe on it
    Webhook-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is inside the MAC so that a receiver can refuse an old request replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

ID_HEADER = "Webhook-Id"
SIGNATURE_HEADER = "Webhook-Signature"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted)
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # every attempt failed; kept for inspection


@dataclass(frozen=True)
class WebhookSubscription:
    id: str
    organization: str
    url: str
    event_types: tuple[str, ...]  # names or patterns ("device.*", "*")
    created_at: datetime
    created_by: str
    removed_at: datetime | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    id: str  # the delivery id (Webhook-Id)
    subscription: str
    event_id: int
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryPosition:
    """Where a page of the delivery log ends (keyset: newest first by creation, then id)."""

    created_at: datetime
    delivery_id: str


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the n-th failure waits base·2^(n-1), at most `cap`; after
    `max_attempts` failures the delivery is dead. `lease`: how long an attempt may take
    before another node may try the delivery again (a node that crashed mid-send)."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(seconds=60)
    timeout: float = 10.0  # seconds for one HTTP attempt

    def delay(self, failures: int) -> timedelta:
        delay: timedelta = self.base * (2 ** max(0, failures - 1))
        return min(self.cap, delay)


def sign_payload(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `Webhook-Signature` header value."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes, header: str, body: bytes, now: int,
                     tolerance: int = 300) -> bool:
    """What a receiver does (also used by our tests): check the MAC and the timestamp."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign_payload(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))
