"""The next identity after an owner or context change: a previous-stage registration keyed
on the device certificate, opened in the lifecycle event's transaction.

On an owner change the previous owner loses every right over the device: its open
registrations naming any of the device's identities are cancelled, the device moves to the
new owner, and only the new owner's registration can give it its next identity (the new
owner must own the domain it names, `RegistrationService` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.authority import AuthorityKind
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError
from iotpki.core.lifecycle.device import Device, DeviceIdentity
from iotpki.core.ports import UnitOfWork
from iotpki.core.ra.ports import IdentityKey
from iotpki.core.ra.registration import (
    RegistrationMethod,
    RegistrationStatus,
    issuer_serial_key,
)
from iotpki.core.ra.registration_service import (
    DEFAULT_LIFETIME,
    CreatedRegistration,
    RegistrationService,
    RegistrationSpec,
)
from iotpki.wire.errors import DecodeError
from iotpki.wire.names import parse_san, parse_subject


@dataclass(frozen=True)
class Reregistration:
    device: Device
    history: list[DeviceIdentity]
    details: Mapping[str, Any]
    transfer: bool  # an owner change (else a context change or maintenance)
    actor: str
    profile: str | None = None  # the maintenance profile, when registering for maintenance


@dataclass(frozen=True)
class NextRegistration:
    owner: str
    created: CreatedRegistration
    cancelled: tuple[str, ...]


def open_next_registration(uow: UnitOfWork, registrations: RegistrationService,
                           step: Reregistration, now: datetime) -> NextRegistration:
    anchor = _anchor(step)
    owner = step.device.current_owner
    cancelled: tuple[str, ...] = ()
    previous = _latest_above_device(step.history)
    if step.transfer:
        new_owner = _text(step.details, "new_owner", required=True)
        assert new_owner is not None
        if uow.organizations.get(new_owner) is None:
            raise NotFoundError(
                f"unknown organization {new_owner!r}: create it with its CAs first "
                f"(iotpki authority create {new_owner}-root --org {new_owner} ..., then an "
                f"issuing CA with --parent {new_owner}-root)")
        if new_owner == owner:
            raise ConfigurationError(f"{owner} owns device {step.device.id} already")
        cancelled = cancel_open_registrations(uow, owner, step.device, step.history, step.actor,
                                              now)
        owner, previous = new_owner, None  # nothing of the old owner's identities carries over
    elif step.profile is None and not (step.details.get("domain") or step.details.get("sans")):
        raise ConfigurationError("a context change names the new context: 'domain' or 'sans'")
    spec = _spec(uow, owner, anchor, previous, step.details)
    if step.profile is not None:
        spec = replace(spec, profile=step.profile, attributes={"lifecycle": "maintenance"})
    created = registrations.create_in(uow, [spec], step.actor)[0]
    return NextRegistration(owner, created, cancelled)


def _anchor(step: Reregistration) -> CertificateRecord:
    """The newest good device certificate: the identity the next enrollment presents."""
    for identity in reversed(step.history):
        record = identity.certificate
        if (identity.stage == "device" and record is not None
                and record.status is CertificateStatus.GOOD):
            return record
    raise ConflictError(f"device {step.device.id} has no good device certificate to register "
                        "its next identity with")


def _latest_above_device(history: list[DeviceIdentity]) -> CertificateRecord | None:
    for identity in reversed(history):
        if identity.stage not in ("component", "device") and identity.certificate is not None:
            return identity.certificate
    return None


def cancel_open_registrations(uow: UnitOfWork, owner: str, device: Device,
                              history: list[DeviceIdentity], actor: str, now: datetime,
                              profile: str | None = None,
                              why: str = "owner change") -> tuple[str, ...]:
    """Cancel `owner`'s open registrations naming any of the device's identities (only those
    for `profile`, if given), each audited."""
    cancelled = []
    for identity in history:
        for registration in uow.registrations.for_identity(_identity_key(identity)):
            if (registration.organization == owner
                    and registration.status is RegistrationStatus.OPEN
                    and profile in (None, registration.profile)
                    and uow.registrations.cancel(registration.id)):
                cancelled.append(registration.id)
                append_audit(uow.audit, now, AuditRecord(
                    "registration.cancel", "success", actor, registration.id,
                    {"device": device.id, "why": why}))
    return tuple(cancelled)


def _identity_key(identity: DeviceIdentity) -> IdentityKey:
    if identity.certificate is None:
        return IdentityKey(identity.fingerprint, identity.fingerprint)
    certificate = identity.certificate.certificate
    return IdentityKey(identity.fingerprint, issuer_serial_key(
        certificate.issuer.rfc4514_string(), identity.certificate.serial_hex))


def _spec(uow: UnitOfWork, owner: str, anchor: CertificateRecord,
          previous: CertificateRecord | None, details: Mapping[str, Any]) -> RegistrationSpec:
    try:
        subject = _text(details, "subject")
        sans = details.get("sans")
        if sans is not None and (isinstance(sans, str) or not isinstance(sans, list)):
            raise ConfigurationError("'sans' is a list of type:value strings")
        lifetime = details.get("lifetime_days")
        return RegistrationSpec(
            organization=owner,
            authority=_text(details, "authority") or (
                previous.authority if previous is not None else _default_authority(uow, owner)),
            profile=_text(details, "profile") or (
                previous.profile if previous is not None else "operational"),
            method=RegistrationMethod.PREVIOUS_STAGE,
            subject=parse_subject(subject) if subject else None,
            sans=tuple(parse_san(str(s)) for s in sans) if sans else None,
            domain=_text(details, "domain"),
            identity_fingerprint=anchor.fingerprint,
            lifetime=timedelta(days=int(lifetime)) if lifetime is not None else DEFAULT_LIFETIME,
            attributes={"lifecycle": "next identity"})
    except (DecodeError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"lifecycle event details: {exc}") from exc


def _default_authority(uow: UnitOfWork, organization: str) -> str:
    issuing = [a.label for a in uow.authorities.list() if a.organization == organization
               and a.can_issue and a.kind is AuthorityKind.INTERMEDIATE]
    if len(issuing) != 1:
        raise ConfigurationError(f"{organization} has {len(issuing)} issuing authorities: name "
                                 "one in the event details ('authority')")
    return issuing[0]


def _text(details: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = details.get(key)
    if value is None or value == "":
        if required:
            raise ConfigurationError(f"lifecycle event details: {key!r} is required")
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"lifecycle event details: {key!r} must be a string")
    return value
