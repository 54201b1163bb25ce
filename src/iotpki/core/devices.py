"""Recording which components a device is built from (component-to-product binding)."""

from __future__ import annotations

from collections.abc import Sequence

from iotpki.core.audit import AuditRecord, append_audit
from iotpki.core.certificate import CertificateStatus
from iotpki.core.clock import Clock
from iotpki.core.device import Device
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.ports import IdentityKey, UnitOfWork, UnitOfWorkFactory
from iotpki.core.registration import new_registration_id
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
                        components_digest(fingerprints), now)
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

    def get(self, device_id: str) -> Device:
        with self._uow() as uow:
            device = uow.devices.get(device_id)
        if device is None:
            raise NotFoundError(f"unknown device {device_id!r}")
        return device


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
