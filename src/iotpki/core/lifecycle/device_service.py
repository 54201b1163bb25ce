"""Devices: recording which components a device is built from (component-to-product
binding), linking every identity issued for it (its history), and reading them back.

An identity is linked in the transaction that issues it (`link_issued`, called by the
issuance path): the device certificate enrolled with a component, the operational
certificate enrolled with the device certificate, and every renewal. A device certificate
issued from a component that is in no device yet records a new device built from that
component. Consuming another organization's registration hands the device over to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.lifecycle.device import Device, DeviceIdentity, DeviceState
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.ports import IdentityKey
from iotpki.core.ra.registration import new_registration_id
from iotpki.wire.binding import components_digest


class DeviceService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def build(self, organization: str, name: str, components: Sequence[str],
              actor: str) -> Device:
        """Record a device built from these component identities. Each must be known: a
        good certificate issued here, or an identity on this organization's registrations
        (from a supplier's manifest)."""
        fingerprints = tuple(sorted({c.lower().replace(":", "") for c in components}))
        if not fingerprints:
            raise ConfigurationError("a device is built from at least one component")
        now = self._clock.now()
        device = Device(new_registration_id(), organization, name, fingerprints,
                        components_digest(fingerprints), now, owner=organization,
                        state_changed_at=now)
        with self._uow() as uow:
            if uow.organizations.get(organization) is None:
                raise NotFoundError(f"unknown organization {organization!r}")
            for fingerprint in fingerprints:
                _check_component(uow, organization, fingerprint)
            uow.devices.add(device)
            append_audit(uow.audit, now, AuditRecord(
                "device.build", "success", actor, device.id,
                {"organization": organization, "name": name, "components": list(fingerprints),
                 "digest": device.component_digest.hex()}))
            uow.commit()
        return device

    def get(self, device_id: str, organization: str | None = None) -> Device:
        """The device; with `organization`, only if that organization owns it now (an
        organization sees no other's devices: NotFoundError, as for an unknown id)."""
        with self._uow() as uow:
            device = uow.devices.get(device_id)
        if device is None or organization not in (None, device.current_owner):
            raise NotFoundError(f"unknown device {device_id!r}")
        return device

    def find(self, owner: str | None = None, state: DeviceState | None = None,
             limit: int = 100, offset: int = 0,
             after: tuple[datetime, str] | None = None) -> list[Device]:
        """Devices by current owner and state, oldest first (`after`: a keyset page)."""
        with self._uow() as uow:
            return uow.devices.find(owner, state, limit, offset, after)

    def history(self, device_id: str, organization: str | None = None) -> list[DeviceIdentity]:
        """The device's chain of identities: its components, then every certificate issued
        for it (device, operational, renewals) in issue order, each with stage and status."""
        self.get(device_id, organization)
        with self._uow() as uow:
            return uow.devices.history(device_id)


def _check_component(uow: UnitOfWork, organization: str, fingerprint: str) -> None:
    record = uow.certificates.get_by_fingerprint(fingerprint)
    if record is not None:
        if record.status is not CertificateStatus.GOOD:
            raise ConfigurationError(f"component {fingerprint} is {record.status.value}")
        return
    known = [r for r in uow.registrations.for_identity(IdentityKey(fingerprint, fingerprint))
             if r.organization == organization]
    if not known:
        raise ConfigurationError(f"component {fingerprint} is on no manifest or registration of "
                                 f"{organization}")


@dataclass(frozen=True)
class IssuedIdentity:
    """What the issuance path knows about a certificate issued for a device."""

    device: str | None  # the device found by enrollment, if any
    presented: str | None  # fingerprint of the identity the client presented
    certificate: x509.Certificate
    record: CertificateRecord
    stage: str  # the profile kind
    organization: str  # of the issuing authority
    registered: bool  # issued by consuming a registration of `organization`
    actor: str


def link_issued(uow: UnitOfWork, issued: IssuedIdentity, now: datetime) -> str | None:
    """Add the certificate to its device's history, inside the issuing transaction; returns
    the device id (None: the certificate belongs to no device)."""
    device = uow.devices.get(issued.device) if issued.device is not None else None
    if device is None:
        if issued.presented is None or issued.stage != "device":
            return None
        device = _new_device(uow, issued, now)
    uow.devices.link(device.id, issued.record.fingerprint, issued.stage, now)
    # The supply-chain hand-over: an organization that enrolls the device with its own
    # registration owns it from now on (DESIGN.md §1 step 4).
    owner = issued.organization if issued.registered else device.current_owner
    state = DeviceState.ACTIVE if device.state is DeviceState.REGISTERED else device.state
    if (owner, state) != (device.current_owner, device.state):
        uow.devices.move(device.id, device.state, state, owner, now)
        append_audit(uow.audit, now, AuditRecord(
            "device.enroll", "success", issued.actor, device.id,
            {"owner": owner, "previous_owner": device.current_owner, "state": state.value,
             "certificate": issued.record.fingerprint}))
    return device.id


def _new_device(uow: UnitOfWork, issued: IssuedIdentity, now: datetime) -> Device:
    assert issued.presented is not None
    components = (issued.presented,)
    name = _device_name(uow, issued)
    device = Device(new_registration_id(), issued.organization, name, components,
                    components_digest(components), now, owner=issued.organization,
                    state_changed_at=now)
    uow.devices.add(device)
    append_audit(uow.audit, now, AuditRecord(
        "device.build", "success", issued.actor, device.id,
        {"organization": issued.organization, "name": name, "components": list(components),
         "digest": device.component_digest.hex(), "certificate": issued.record.fingerprint}))
    return device


def _device_name(uow: UnitOfWork, issued: IssuedIdentity) -> str:
    """The device certificate's common name, made unique within the organization."""
    names = issued.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else issued.record.subject or issued.record.fingerprint
    if uow.devices.named(issued.organization, name) is not None:
        name = f"{name} ({issued.record.fingerprint[:12]})"
    return name
