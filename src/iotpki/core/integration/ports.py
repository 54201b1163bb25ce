"""What integrations need stored: API principals, webhook subscriptions and deliveries, web
console sessions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from iotpki.core.integration.principal import Principal
from iotpki.core.integration.webhook import (
    DeliveryPosition,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)

if TYPE_CHECKING:
    from iotpki.core.integration.console_session import ConsoleSession


class PrincipalRepository(Protocol):
    def add(self, principal: Principal) -> None: ...

    def get(self, principal_id: str) -> Principal | None: ...

    def for_certificate(self, fingerprint: str, subject: str) -> list[Principal]:
        """Principals bound to this certificate's fingerprint or to its subject."""
        ...

    def subject_reserved(self, subject: str, authority: str) -> bool:
        """Whether an active principal is bound to this subject (RFC 4514) of `authority`."""
        ...

    def list(self, organization: str | None) -> list[Principal]: ...

    def revoke(self, principal_id: str, at: datetime) -> None: ...


class WebhookRepository(Protocol):
    def add(self, subscription: WebhookSubscription, secret_sealed: bytes) -> None: ...

    def get(self, subscription_id: str) -> WebhookSubscription | None: ...

    def sealed_secret(self, subscription_id: str) -> bytes: ...

    def active(self) -> list[WebhookSubscription]: ...

    def subscriptions(self, organization: str | None) -> list[WebhookSubscription]:
        """Subscriptions not removed, oldest first."""
        ...

    def remove(self, subscription_id: str, at: datetime) -> bool: ...

    def add_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        """Raise `ConflictError` if one (subscription, event) exists already."""
        ...

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[WebhookDelivery]:
        """Pending deliveries due at `now`, each moved to `lease_until` (compare-and-set, so
        that one node only gets each); the caller commits at once, then sends."""
        ...

    def record_attempt(self, delivery: WebhookDelivery) -> None:
        """Store status, attempts, next attempt, last error, delivered time."""
        ...

    def deliveries(self, organization: str | None, subscription: str | None,
                   status: DeliveryStatus | None, limit: int, offset: int) -> list[WebhookDelivery]:
        """Newest first."""
        ...

    def delivery_page(self, organization: str, status: DeliveryStatus | None,
                      before: DeliveryPosition | None, limit: int) -> list[WebhookDelivery]:
        """The organization's deliveries older than `before` (keyset), newest first."""
        ...

    def delivery(self, delivery_id: str) -> tuple[WebhookDelivery, str] | None:
        """A delivery and the organization of its subscription."""
        ...

    def retry(self, delivery_id: str, now: datetime) -> bool:
        """Make an undelivered delivery pending and due at `now`; False if it was
        delivered (or is unknown)."""
        ...


class ConsoleSessionRepository(Protocol):
    def add(self, session: ConsoleSession) -> None: ...

    def get(self, token_hash: str) -> ConsoleSession | None: ...

    def delete(self, token_hash: str) -> None: ...

    def purge(self, now: datetime) -> None:
        """Delete the sessions expired at `now`."""
        ...
