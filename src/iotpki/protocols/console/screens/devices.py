"""Screen 2, devices: the organization's inventory, filtered and paged (keyset), and per
device its identity timeline, its identities and the lifecycle events its state allows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from iotpki.core.errors import ConfigurationError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.lifecycle.device import DeviceIdentity, DeviceState
from iotpki.core.lifecycle.device_inventory import DeviceQuery
from iotpki.core.lifecycle.transitions import LifecycleEvent, parse_event
from iotpki.protocols.console.context import PREFIX, Visit
from iotpki.protocols.console.paging import decode_position, encode_position
from iotpki.protocols.console.svg.timeline import identity_timeline

FILTERS = ("state", "profile", "domain", "expiring_before", "search")
# Events that need more than a click (a new owner, a new domain) are left to the API.
CONSOLE_EVENTS = frozenset(LifecycleEvent) - {LifecycleEvent.OWNER_CHANGE,
                                              LifecycleEvent.CONTEXT_CHANGE}
MAX_TEXT = 256


def _text(visit: Visit, name: str) -> str | None:
    value = visit.query.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise ConfigurationError(f"{name}: at most {MAX_TEXT} characters")
    return value or None


def _state(text: str | None) -> DeviceState | None:
    try:
        return DeviceState(text) if text else None
    except ValueError:
        raise ConfigurationError(f"unknown device state {text!r}") from None


def _day(text: str | None) -> datetime | None:
    try:
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(), UTC) \
            if text else None
    except ValueError:
        raise ConfigurationError(f"expiring before: a date YYYY-MM-DD, not {text!r}") from None


def index(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    chosen = {name: _text(visit, name) for name in FILTERS}
    cursor = _text(visit, "cursor")
    query = DeviceQuery(owner=visit.principal.organization, state=_state(chosen["state"]),
                        profile=chosen["profile"], domain=chosen["domain"],
                        expires_before=_day(chosen["expiring_before"]),
                        search=chosen["search"],
                        after=decode_position(cursor) if cursor else None)
    page = visit.services.inventory.page(query)
    filters = {k: v for k, v in chosen.items() if v}
    next_link = (f"{PREFIX}/devices?" + urlencode({**filters, "cursor": encode_position(
        page.next)})) if page.next else None
    return visit.page("devices.html", title="Devices", active="devices", page=page,
                      chosen=chosen, states=[s.value for s in DeviceState],
                      profiles=sorted(visit.services.profiles), next_link=next_link,
                      first_link=f"{PREFIX}/devices?{urlencode(filters)}" if cursor else None)


def certificate_links(visit: Visit) -> Callable[[DeviceIdentity], str | None]:
    """The certificate page of an identity issued by one of the organization's authorities
    (a supplier's certificate in the history has no page here: it is not ours)."""
    own = {a.label for a in visit.services.authorities.list()
           if a.organization == visit.principal.organization}

    def link(identity: DeviceIdentity) -> str | None:
        record = identity.certificate
        if record is None or record.authority not in own:
            return None
        return f"{PREFIX}/certificates/{record.authority}/{record.serial_hex}"
    return link


def show(visit: Visit, device_id: str) -> Response:
    authorize(visit.principal, Action.READ)
    organization = visit.principal.organization
    device = visit.services.devices.get(device_id, organization)
    history = visit.services.devices.history(device_id, organization)
    now = visit.services.clock.now()
    allowed = [t for t in visit.services.lifecycle.allowed(device) if t.event in CONSOLE_EVENTS]
    link = certificate_links(visit)
    return visit.page("device.html", title=f"Device {device.name}", active="devices",
                      device=device, history=history, link=link,
                      timeline=identity_timeline(device, history, now, link),
                      allowed=allowed if visit.may(Action.REPORT_EVENT) else [],
                      notice=_notice(visit.query.get("done"), device.state))


def _notice(done: str | None, state: DeviceState) -> str | None:
    """After an event: a fixed sentence (never text taken from the link)."""
    event = next((e for e in LifecycleEvent if e.value == done), None)
    return f"Reported {event.value}: the device is now {state.value}." if event else None


def report_event(visit: Visit, device_id: str) -> Response:
    authorize(visit.principal, Action.REPORT_EVENT)
    event = parse_event(visit.form.get("event", ""))
    if event not in CONSOLE_EVENTS:
        raise ConfigurationError(f"{event.value} needs details: report it through the API")
    note = visit.form.get("note", "").strip()[:MAX_TEXT]
    details = {"via": "console", **({"note": note} if note else {})}
    visit.services.lifecycle.report(
        device_id, event, visit.principal.actor, details,
        organization=visit.principal.organization)
    return RedirectResponse(f"{PREFIX}/devices/{device_id}?done={event.value}", 303)
