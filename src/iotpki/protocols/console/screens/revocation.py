"""Screen 6, the revocation center: lifecycle actions on a device (lost, found, stolen,
compromised, broken, owner change, retired, maintenance) each through a confirmation page
that shows what will happen (the state it moves to, the certificates it holds, releases or
revokes and with which reason, what follows); bulk revocation by filter, the count shown
first and the revocation refused if the count changed meanwhile; and per authority its CRLs
(number, age, next update, entries, size) and OCSP health (the responder certificate and a
live question to our responder, timed)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as midnight
from urllib.parse import urlencode

from cryptography import x509
from starlette.responses import RedirectResponse, Response

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery, Purpose, ServiceCertificate
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.lifecycle.device_inventory import DeviceQuery
from iotpki.core.lifecycle.transitions import FollowUp, LifecycleEvent, parse_event
from iotpki.core.revocation.reasons import REASONS, parse_reason
from iotpki.core.revocation.status import CRLInfo, CRLKind
from iotpki.protocols.console.context import PREFIX, Visit
from iotpki.protocols.console.screens.certificate import LiveStatus, live_status

E = LifecycleEvent
# The events offered here; context_change (a new domain or SANs) and renewal_due (no
# certificate changes) are the API's.
EVENTS = (E.LOST, E.FOUND, E.STOLEN, E.COMPROMISED, E.BROKEN, E.OWNER_CHANGE, E.RETIRED,
          E.MAINTENANCE_START, E.MAINTENANCE_END)
FOLLOW_UPS = {
    FollowUp.TRANSFER: "The device moves to the new owner, registered for its next identity "
                       "(the device certificate stays: it anchors the re-registration).",
    FollowUp.REREGISTER: "A new registration opens for the device's next identity.",
    FollowUp.MAINTENANCE_REGISTER: "A registration for a maintenance identity opens.",
    FollowUp.MAINTENANCE_CLOSE: "The device's open maintenance registrations end.",
}
BULK_FILTERS = ("authority", "profile", "subject", "expiring_before", "status")
MAX_TEXT = 256


@dataclass(frozen=True)
class CRLRow:
    authority: str
    full: CRLInfo | None
    delta: CRLInfo | None
    full_size: int | None  # bytes of the full CRL's DER


@dataclass(frozen=True)
class OCSPRow:
    authority: str
    responder: ServiceCertificate | None  # None: the CA signs its own answers
    probe: LiveStatus | None  # None: no certificate to ask about yet
    milliseconds: float | None


def _text(values: Mapping[str, str], name: str) -> str:
    value = values.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise ConfigurationError(f"{name}: at most {MAX_TEXT} characters")
    return value


def _own_authorities(visit: Visit) -> list[Authority]:
    organization = visit.principal.organization
    return [a for a in visit.services.authorities.list() if a.organization == organization]


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    own = [a for a in _own_authorities(visit) if a.can_issue]
    return visit.page(
        "revocation.html", title="Revocation center", active="revocation",
        events=EVENTS, reasons=REASONS, authorities=[a.label for a in own],
        profiles=sorted(visit.services.profiles), crls=[_crl_row(visit, a) for a in own],
        ocsp=[_ocsp_row(visit, a) for a in own], now=visit.services.clock.now(),
        may_report=visit.may(Action.REPORT_EVENT), may_revoke=visit.may(Action.REVOKE),
        notice=_notice(visit), age=age)


def age(elapsed: timedelta) -> str:
    seconds = max(0, int(elapsed.total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _notice(visit: Visit) -> str | None:
    """After an action: a fixed sentence (never text taken from the link)."""
    count = visit.query.get("revoked", "")
    if count.isdigit():
        return f"Done: {int(count):,} certificates changed status."
    return "Done: the device moved to its new owner." if "moved" in visit.query else None


def _crl_row(visit: Visit, authority: Authority) -> CRLRow:
    crls = visit.services.crls
    full = crls.latest(authority.label, CRLKind.FULL)
    return CRLRow(authority.label, full.info if full else None,
                  crls.latest_info(authority.label, CRLKind.DELTA),
                  len(full.der) if full else None)


def _ocsp_row(visit: Visit, authority: Authority) -> OCSPRow:
    responder = visit.services.service_certificates.stored(authority.label,
                                                           Purpose.OCSP_SIGNING)
    # A good one (the answer to expect), found in (authority, status) index order: without
    # the status, SQLite sorts all the authority's certificates to find its newest.
    newest = visit.services.certificates.find(CertificateQuery(
        authority=authority.label, status=CertificateStatus.GOOD, limit=1, newest_first=True))
    if not newest:
        return OCSPRow(authority.label, responder, None, None)
    started = time.perf_counter()
    probe = live_status(visit, authority, newest[0].certificate)
    return OCSPRow(authority.label, responder, probe, (time.perf_counter() - started) * 1000)


# -- lifecycle actions -------------------------------------------------------------------

def _event(text: str) -> LifecycleEvent:
    event = parse_event(text)
    if event not in EVENTS:
        raise ConfigurationError(f"{event.value} is reported through the API")
    return event


def find_device(visit: Visit) -> Response:
    """The lifecycle form: a device by name or id, then its confirmation page."""
    authorize(visit.principal, Action.REPORT_EVENT)
    event = _event(_text(visit.query, "event"))
    wanted = _text(visit.query, "device")
    if not wanted:
        raise ConfigurationError("name the device (its name or id)")
    organization = visit.principal.organization
    try:
        device_id = visit.services.devices.get(wanted, organization).id
    except NotFoundError:  # not an id of ours: a name
        found = visit.services.inventory.page(DeviceQuery(owner=organization, search=wanted,
                                                          limit=2))
        named = [d.id for d in found.devices if d.name == wanted]
        if len(named) != 1:
            raise NotFoundError(f"no single device of yours is named {wanted!r}") from None
        device_id = named[0]
    return RedirectResponse(f"{PREFIX}/revocation/devices/{device_id}/{event.value}", 303)


def confirm_event(visit: Visit, device_id: str, event: str) -> Response:
    authorize(visit.principal, Action.REPORT_EVENT)
    kind = _event(event)
    preview = visit.services.lifecycle.preview(device_id, kind, visit.principal.organization)
    transition = preview.transition
    return visit.page(
        "revocation_confirm.html", title=f"Confirm: {kind.value}", active="revocation",
        preview=preview, transition=transition, follow_up=FOLLOW_UPS.get(transition.follow_up),
        after={"hold": CertificateStatus.HELD.value, "release": CertificateStatus.GOOD.value,
               "revoke": CertificateStatus.REVOKED.value}.get(transition.action.value),
        reason=transition.reason.value if transition.reason else None,
        needs_owner=kind is E.OWNER_CHANGE)


def report_event(visit: Visit, device_id: str, event: str) -> Response:
    authorize(visit.principal, Action.REPORT_EVENT)
    kind = _event(event)
    details: dict[str, str] = {"via": "console revocation center"}
    if kind is E.OWNER_CHANGE:
        details["new_owner"] = _text(visit.form, "new_owner")
        if not details["new_owner"]:
            raise ConfigurationError("an owner change names the new owner")
    note = _text(visit.form, "note")
    if note:
        details["note"] = note
    visit.services.lifecycle.report(device_id, kind, visit.principal.actor, details,
                                    organization=visit.principal.organization)
    if kind is E.OWNER_CHANGE:  # no longer ours: its page is the new owner's
        return RedirectResponse(f"{PREFIX}/revocation?" + urlencode({"moved": device_id}), 303)
    return RedirectResponse(f"{PREFIX}/devices/{device_id}?done={kind.value}", 303)


# -- bulk revocation ---------------------------------------------------------------------

def _bulk_query(visit: Visit, values: Mapping[str, str]) -> tuple[CertificateQuery, dict[str, str]]:
    chosen = {name: _text(values, name) for name in BULK_FILTERS}
    chosen = {k: v for k, v in chosen.items() if v}
    if not chosen:
        raise ConfigurationError("a bulk revocation needs at least one filter")
    if "authority" in chosen and chosen["authority"] not in {
            a.label for a in _own_authorities(visit)}:
        raise NotFoundError("no such authority")
    try:
        status = CertificateStatus(chosen["status"]) if "status" in chosen else None
        before = datetime.combine(datetime.strptime(chosen["expiring_before"], "%Y-%m-%d").date(),
                                  midnight(), UTC) if "expiring_before" in chosen else None
    except ValueError:
        raise ConfigurationError("status: good or on-hold; expiring before: YYYY-MM-DD") \
            from None
    return CertificateQuery(
        authority=chosen.get("authority"), status=status, profile=chosen.get("profile"),
        subject_prefix=_subject_prefix(chosen.get("subject")), expires_before=before,
        organization=visit.principal.organization, limit=None), chosen


def _subject_prefix(text: str | None) -> str | None:
    """The subject filter is the beginning of the subject as the certificate pages show it
    (RFC 4514, e.g. CN=sensor-00): an index range at any fleet size, where a substring
    would read every subject. A bare name is refused rather than matching nothing."""
    if text is not None and "=" not in text:
        raise ConfigurationError(f"subject: the beginning of the subject, with its attribute "
                                 f"(e.g. CN={text}), not a part of it")
    return text


def _reason(values: Mapping[str, str]) -> x509.ReasonFlags:
    try:
        return parse_reason(_text(values, "reason"))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def bulk_preview(visit: Visit) -> Response:
    authorize(visit.principal, Action.REVOKE)
    query, chosen = _bulk_query(visit, visit.query)
    reason = _reason(visit.query)
    preview = visit.services.revocation.preview_matching(query, reason)
    return visit.page("revocation_bulk.html", title="Confirm: bulk revocation",
                      active="revocation", preview=preview, chosen=chosen,
                      reason=reason.value)


def bulk_revoke(visit: Visit) -> Response:
    authorize(visit.principal, Action.REVOKE)
    query, _ = _bulk_query(visit, visit.form)
    expected = _text(visit.form, "expected")
    if not expected.isdigit():
        raise ConfigurationError("the count shown is missing: review the filter again")
    result = visit.services.revocation.revoke_matching(
        query, _reason(visit.form), visit.principal.actor, expected=int(expected))
    return RedirectResponse(f"{PREFIX}/revocation?revoked={result.revoked}", 303)
