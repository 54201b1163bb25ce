"""Screen 10, integrations: the organization's webhook subscriptions with their delivery log
(filtered by status, keyset-paged) and a retry button, and its API principals (an admin may
revoke one). Secrets are never shown here: a key or a webhook secret is shown once, when it
is made (CLI and API)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from iotpki.core.errors import ConfigurationError, ConflictError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.integration.webhook import DeliveryPosition, DeliveryStatus
from iotpki.protocols.console.context import PREFIX, Visit
from iotpki.protocols.console.paging import decode_keyset, encode_keyset

PAGE = 50
NOTICES = {"retry": "The delivery is due again: the dispatcher attempts it within seconds.",
           "revoke": "The principal is revoked: its key or certificate no longer signs in."}


def encode_position(position: DeliveryPosition) -> str:
    return encode_keyset(position.created_at, position.delivery_id)


def decode_position(cursor: str) -> DeliveryPosition:
    return DeliveryPosition(*decode_keyset(cursor))


def _status(text: str) -> DeliveryStatus | None:
    try:
        return DeliveryStatus(text) if text else None
    except ValueError:
        raise ConfigurationError(f"unknown delivery status {text!r}") from None


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    organization = visit.principal.organization
    services = visit.services
    chosen = visit.query.get("status", "")
    cursor = visit.query.get("cursor", "")
    deliveries = services.webhooks.delivery_page(
        organization, _status(chosen), decode_position(cursor) if cursor else None, PAGE + 1)
    shown = deliveries[:PAGE]
    filters = {"status": chosen} if chosen else {}
    next_link = None
    if len(deliveries) > PAGE:
        last = shown[-1]
        next_link = f"{PREFIX}/integrations?" + urlencode(
            {**filters, "cursor": encode_position(DeliveryPosition(last.created_at, last.id))})
    subscriptions = services.webhooks.find(organization)
    return visit.page(
        "integrations.html", title="Integrations", active="integrations",
        subscriptions=subscriptions, urls={s.id: s.url for s in subscriptions},
        deliveries=shown, statuses=[s.value for s in DeliveryStatus], chosen=chosen,
        next_link=next_link,
        first_link=f"{PREFIX}/integrations?{urlencode(filters)}" if cursor else None,
        principals=services.principals.list(organization),
        may_act=visit.may(Action.INTEGRATE), notice=NOTICES.get(visit.query.get("done", "")))


def retry_delivery(visit: Visit, delivery_id: str) -> Response:
    authorize(visit.principal, Action.INTEGRATE)
    visit.services.webhooks.retry(delivery_id, visit.principal.actor,
                                  visit.principal.organization)
    return RedirectResponse(f"{PREFIX}/integrations?done=retry", 303)


def revoke_principal(visit: Visit, principal_id: str) -> Response:
    authorize(visit.principal, Action.INTEGRATE)
    target = visit.services.principals.get(principal_id, visit.principal.organization)
    if target.id == visit.principal.id:
        raise ConflictError("you are signed in as this principal: revoke it from another "
                            "admin's session")
    visit.services.principals.revoke(target.id, visit.principal.actor)
    return RedirectResponse(f"{PREFIX}/integrations?done=revoke", 303)
