"""The device lifecycle: an explicit transition table (state and event → new state and the
certificate action, with its RFC 5280 §5.3.1 reason code) and the service that applies an
event to a device and all its current certificates in one transaction.

docs/lifecycle.md shows the same table. certificateHold is the only reversible reason: lost
and maintenance hold, found and maintenance end release (removeFromCRL in the next delta
CRL, RFC 5280 §5.3.1). Owner and context changes revoke the device's identities above the
device certificate and open a previous-stage registration for the next one, keyed on the
device certificate (which they keep: it is the manufacturer's identity of the device).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError
from iotpki.core.events import Event
from iotpki.core.lifecycle.device import COMPONENT_STAGE, Device, DeviceIdentity
from iotpki.core.lifecycle.device import DeviceState as S
from iotpki.core.lifecycle.next_registration import (
    Reregistration,
    cancel_open_registrations,
    open_next_registration,
)
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.registration_service import CreatedRegistration, RegistrationService
from iotpki.core.revocation.service import release_in, revoke_in
from iotpki.wire.errors import PKIError

R = x509.ReasonFlags


class LifecycleEvent(StrEnum):
    LOST = "lost"
    FOUND = "found"
    STOLEN = "stolen"
    COMPROMISED = "compromised"
    BROKEN = "broken"
    RETIRED = "retired"
    MAINTENANCE_START = "maintenance_start"
    MAINTENANCE_END = "maintenance_end"
    OWNER_CHANGE = "owner_change"
    CONTEXT_CHANGE = "context_change"
    RENEWAL_DUE = "renewal_due"


class CertificateAction(StrEnum):
    NONE = "none"
    HOLD = "hold"  # certificateHold: good certificates go on hold
    RELEASE = "release"  # held certificates become good again (removeFromCRL)
    REVOKE = "revoke"  # for good, with the transition's reason


class Scope(StrEnum):
    ALL = "all"  # every current identity issued for the device
    ABOVE_DEVICE = "above-device"  # all but the device certificate(s): the re-registration anchor
    MAINTENANCE = "maintenance-profile"  # only identities of the maintenance profile


class FollowUp(StrEnum):
    NONE = "none"
    TRANSFER = "transfer"  # the device moves to a new owner, registered for its next identity
    REREGISTER = "reregister"  # a new operational registration for the same owner
    NOTIFY = "notify"  # only an event, for the device-management system
    MAINTENANCE_REGISTER = "maintenance-register"  # a registration for the maintenance profile
    MAINTENANCE_CLOSE = "maintenance-close"  # the owner's open maintenance registrations end


@dataclass(frozen=True)
class Transition:
    event: LifecycleEvent
    sources: frozenset[S]
    target: S
    action: CertificateAction
    reason: x509.ReasonFlags | None = None
    scope: Scope = Scope.ALL
    follow_up: FollowUp = FollowUp.NONE


_IN_SERVICE = frozenset({S.ACTIVE, S.REGISTERED})
_NOT_ENDED = frozenset({S.ACTIVE, S.REGISTERED, S.LOST, S.MAINTENANCE})
E, A = LifecycleEvent, CertificateAction

TRANSITIONS: tuple[Transition, ...] = (
    Transition(E.LOST, frozenset({*_IN_SERVICE, S.MAINTENANCE}), S.LOST, A.HOLD, R.certificate_hold),
    Transition(E.FOUND, frozenset({S.LOST}), S.ACTIVE, A.RELEASE, R.remove_from_crl),
    Transition(E.STOLEN, _NOT_ENDED, S.STOLEN, A.REVOKE, R.key_compromise),
    Transition(E.COMPROMISED, _NOT_ENDED, S.COMPROMISED, A.REVOKE, R.key_compromise),
    Transition(E.BROKEN, _NOT_ENDED, S.BROKEN, A.REVOKE, R.cessation_of_operation),
    Transition(E.RETIRED, _NOT_ENDED, S.RETIRED, A.REVOKE, R.cessation_of_operation),
    Transition(E.MAINTENANCE_START, frozenset({S.ACTIVE}), S.MAINTENANCE, A.HOLD,
               R.certificate_hold),
    Transition(E.MAINTENANCE_END, frozenset({S.MAINTENANCE}), S.ACTIVE, A.RELEASE,
               R.remove_from_crl),
    Transition(E.OWNER_CHANGE, _IN_SERVICE, S.REGISTERED, A.REVOKE, R.affiliation_changed,
               Scope.ABOVE_DEVICE, FollowUp.TRANSFER),
    Transition(E.CONTEXT_CHANGE, _IN_SERVICE, S.REGISTERED, A.REVOKE, R.superseded,
               Scope.ABOVE_DEVICE, FollowUp.REREGISTER),
    Transition(E.RENEWAL_DUE, frozenset({S.ACTIVE}), S.ACTIVE, A.NONE,
               follow_up=FollowUp.NOTIFY),
)


# With a maintenance profile configured, maintenance keeps the device's identities good and
# gives it a separate maintenance identity instead, revoked (superseded) when it ends.
MAINTENANCE_BY_PROFILE: tuple[Transition, ...] = (
    Transition(E.MAINTENANCE_START, frozenset({S.ACTIVE}), S.MAINTENANCE, A.NONE,
               follow_up=FollowUp.MAINTENANCE_REGISTER),
    Transition(E.MAINTENANCE_END, frozenset({S.MAINTENANCE}), S.ACTIVE, A.REVOKE, R.superseded,
               Scope.MAINTENANCE, FollowUp.MAINTENANCE_CLOSE),
)


def transition_table(maintenance_profile: str | None = None) -> tuple[Transition, ...]:
    """TRANSITIONS, with the maintenance rows of MAINTENANCE_BY_PROFILE when a maintenance
    profile is configured."""
    if maintenance_profile is None:
        return TRANSITIONS
    replaced = {t.event for t in MAINTENANCE_BY_PROFILE}
    return (*(t for t in TRANSITIONS if t.event not in replaced), *MAINTENANCE_BY_PROFILE)


class IllegalTransitionError(ConflictError):
    """An event the device's current state does not allow (e.g. found on a retired device);
    nothing was changed."""

    def __init__(self, device: str, state: S, event: LifecycleEvent) -> None:
        allowed = sorted(t.event.value for t in TRANSITIONS if state in t.sources)
        super().__init__(f"device {device} is {state.value}: event {event.value} is not "
                         f"allowed (allowed: {', '.join(allowed) or 'none'})")
        self.device, self.state, self.event = device, state, event


def parse_event(text: str) -> LifecycleEvent:
    try:
        return LifecycleEvent(text.strip().lower().replace("-", "_"))
    except ValueError:
        raise ConfigurationError(f"unknown lifecycle event {text!r}; use one of "
                                 f"{', '.join(e.value for e in LifecycleEvent)}") from None


def transition_for(device: Device, event: LifecycleEvent,
                   table: tuple[Transition, ...] = TRANSITIONS) -> Transition:
    for transition in table:
        if transition.event is event and device.state in transition.sources:
            return transition
    raise IllegalTransitionError(device.id, device.state, event)


@dataclass(frozen=True)
class LifecycleOutcome:
    device: Device  # after the event
    event: LifecycleEvent
    previous_state: S
    previous_owner: str
    certificates: tuple[CertificateRecord, ...]  # those the event acted on, as they are now
    registration: CreatedRegistration | None = None  # opened for the next identity
    cancelled: tuple[str, ...] = ()  # the previous owner's registrations, cancelled


@dataclass(frozen=True)
class LifecyclePreview:
    """What reporting an event would do now, changing nothing (a console's confirmation)."""

    device: Device
    transition: Transition
    certificates: tuple[CertificateRecord, ...]  # those it would act on, as they are now


class LifecycleService:
    """Applies lifecycle events reported by a CRM or device-management system."""

    def __init__(self, uow: UnitOfWorkFactory, registrations: RegistrationService,
                 clock: Clock, maintenance_profile: str | None = None) -> None:
        self._uow = uow
        self._registrations = registrations
        self._clock = clock
        self._maintenance_profile = maintenance_profile
        self._table = transition_table(maintenance_profile)

    def allowed(self, device: Device) -> list[Transition]:
        """The transitions the device's state allows now (what a console offers)."""
        return [t for t in self._table if device.state in t.sources]

    def preview(self, device_id: str, event: LifecycleEvent, organization: str | None = None
                ) -> LifecyclePreview:
        """The transition `report` would take and the certificates it would act on; the
        same refusals (NotFoundError, IllegalTransitionError), none audited: nothing
        happened."""
        now = self._clock.now()
        with self._uow() as uow:
            device = uow.devices.get(device_id)
            if device is None or organization not in (None, device.current_owner):
                raise NotFoundError(f"unknown device {device_id!r}")
            transition = transition_for(device, event, self._table)
            history = uow.devices.history(device.id)
        return LifecyclePreview(device, transition, tuple(
            _targets(history, transition, now, self._maintenance_profile)))

    def report(self, device_id: str, event: LifecycleEvent | str, actor: str,
               details: Mapping[str, Any] | None = None,
               organization: str | None = None) -> LifecycleOutcome:
        """Apply `event` to the device: state change, certificate actions on every current
        certificate of the device, registrations, audit entries and outbox events, all in one
        transaction. `organization`: the reporting principal's organization; it must own the
        device now (else NotFoundError, as for an unknown device). `details` (JSON object):
        for owner_change `new_owner` (required), `authority`, `profile`, `subject`, `sans`,
        `domain`, `lifetime_days`; for context_change the same without `new_owner` (a new
        `domain` or `sans` is required); anything else is recorded in the audit entry.
        Raises IllegalTransitionError, NotFoundError, ConfigurationError: nothing changed and
        the refusal is audited."""
        details = dict(details or {})
        now = self._clock.now()
        try:
            kind = parse_event(event) if isinstance(event, str) else event
            with self._uow() as uow:
                outcome = self._apply(uow, device_id, kind, actor, details, organization, now)
                uow.commit()
        except PKIError as refusal:
            self._refuse(device_id, str(event), actor, details, refusal, now)
            raise
        return outcome

    def _apply(self, uow: UnitOfWork, device_id: str, event: LifecycleEvent, actor: str,
               details: dict[str, Any], organization: str | None,
               now: datetime) -> LifecycleOutcome:
        device = uow.devices.get(device_id)
        if device is None or organization not in (None, device.current_owner):
            raise NotFoundError(f"unknown device {device_id!r}")
        transition = transition_for(device, event, self._table)
        history = uow.devices.history(device.id)
        acted = [_act(uow, record, transition, actor, now)
                 for record in _targets(history, transition, now, self._maintenance_profile)]
        owner, created, cancelled = self._follow_up(uow, device, history, transition, details,
                                                    actor, now)
        if not uow.devices.move(device.id, device.state, transition.target, owner, now):
            raise ConflictError(f"device {device.id} changed meanwhile; report the event again")
        moved = uow.devices.get(device.id)
        assert moved is not None
        outcome = LifecycleOutcome(moved, event, device.state, device.current_owner,
                                   tuple(uow.certificates.get(r.authority, r.serial) or r
                                         for r in acted), created, cancelled)
        _record(uow, outcome, actor, details, now)
        return outcome

    def _follow_up(self, uow: UnitOfWork, device: Device, history: list[DeviceIdentity],
                   transition: Transition, details: dict[str, Any], actor: str, now: datetime
                   ) -> tuple[str, CreatedRegistration | None, tuple[str, ...]]:
        """Registrations the transition opens or cancels: (owner after, opened, cancelled)."""
        follow_up, owner = transition.follow_up, device.current_owner
        if follow_up is FollowUp.MAINTENANCE_CLOSE:
            return owner, None, cancel_open_registrations(
                uow, owner, device, history, actor, now, self._maintenance_profile,
                "maintenance end")
        if follow_up not in (FollowUp.TRANSFER, FollowUp.REREGISTER,
                             FollowUp.MAINTENANCE_REGISTER):
            return owner, None, ()
        step = open_next_registration(uow, self._registrations, Reregistration(
            device, history, details, follow_up is FollowUp.TRANSFER, actor,
            self._maintenance_profile if follow_up is FollowUp.MAINTENANCE_REGISTER else None),
            now)
        return step.owner, step.created, step.cancelled

    def _refuse(self, device_id: str, event: str, actor: str, details: dict[str, Any],
                refusal: PKIError, now: datetime) -> None:
        with self._uow() as uow:
            append_audit(uow.audit, now, AuditRecord(
                f"device.{event}", "refused", actor, device_id,
                {"reason": type(refusal).__name__, "detail": str(refusal), "details": details}))
            uow.commit()


def _targets(history: list[DeviceIdentity], transition: Transition, now: datetime,
             maintenance_profile: str | None = None) -> list[CertificateRecord]:
    """The device's current certificates the transition acts on (components excluded: they
    belong to their supplier's PKI and are consumed already)."""
    if transition.action is CertificateAction.NONE:
        return []
    wanted = {CertificateAction.HOLD: (CertificateStatus.GOOD,),
              CertificateAction.RELEASE: (CertificateStatus.HELD,),
              CertificateAction.REVOKE: (CertificateStatus.GOOD, CertificateStatus.HELD)}
    return [i.certificate for i in history
            if i.certificate is not None and i.stage != COMPONENT_STAGE and i.is_current(now)
            and i.certificate.status in wanted[transition.action]
            and _in_scope(i, transition.scope, maintenance_profile)]


def _in_scope(identity: DeviceIdentity, scope: Scope, maintenance_profile: str | None) -> bool:
    if scope is Scope.MAINTENANCE:
        return identity.certificate is not None and \
            identity.certificate.profile == maintenance_profile
    return scope is Scope.ALL or identity.stage != "device"


def _act(uow: UnitOfWork, record: CertificateRecord, transition: Transition, actor: str,
         now: datetime) -> CertificateRecord:
    if transition.action is CertificateAction.RELEASE:
        release_in(uow, record, actor, now)
    else:
        assert transition.reason is not None
        revoke_in(uow, record, transition.reason, actor, now)
    return record


def _record(uow: UnitOfWork, outcome: LifecycleOutcome, actor: str, details: dict[str, Any],
            now: datetime) -> None:
    device = outcome.device
    facts = {
        "device": device.id, "organization": device.current_owner, "event": outcome.event.value,
        "state": device.state.value, "previous_state": outcome.previous_state.value,
        "previous_owner": outcome.previous_owner,
        "certificates": [f"{r.authority}:{r.serial_hex}" for r in outcome.certificates],
        "registration": outcome.registration.registration.id if outcome.registration else None,
        "cancelled_registrations": list(outcome.cancelled),
    }
    append_audit(uow.audit, now, AuditRecord(
        f"device.{outcome.event.value}", "success", actor, device.id, {**facts, "details": details}))
    uow.events.add(Event(f"device.{outcome.event.value}", now, facts))
