"""The expiry monitor: finds certificates inside their profile's renewal window and emits
`certificate.expiring` once per certificate, plus `device.renewal_due` when the certificate
belongs to a device (for the device-management system that drives renewal).

Idempotent across runs and nodes: each announcement is noted (`expiry_notices`) in the
transaction that writes its events; a certificate noted once is never announced again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.profile import Profile
from iotpki.core.clock import Clock
from iotpki.core.events import Event
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class ExpiryNotice:
    certificate: CertificateRecord
    window_start: datetime
    device: str | None  # the device the certificate belongs to, if any


class ExpiryMonitor:
    def __init__(self, uow: UnitOfWorkFactory, profiles: Mapping[str, Profile], clock: Clock,
                 batch: int = 500) -> None:
        self._uow = uow
        self._profiles = profiles
        self._clock = clock
        self._batch = batch

    def scan(self, actor: str = "expiry-monitor") -> list[ExpiryNotice]:
        """Announce every good certificate that entered its renewal window and was not
        announced before; returns what this run announced."""
        now = self._clock.now()
        notices: list[ExpiryNotice] = []
        for profile in self._profiles.values():
            notices.extend(self._scan_profile(profile, now, actor))
        return notices

    def _scan_profile(self, profile: Profile, now: datetime, actor: str) -> list[ExpiryNotice]:
        # Every certificate of the profile lives at most `validity`, so none is inside its
        # window unless it expires within the widest window; the exact start is per row.
        window = profile.renewal_window
        horizon = now + window.widest(profile.validity)
        notices: list[ExpiryNotice] = []
        offset = 0
        while True:
            with self._uow() as uow:
                rows = uow.expiry.candidates(profile.name, horizon, now, self._batch + offset)
                page = rows[offset:]
                for record in page:
                    start = window.start(record.not_before, record.not_after)
                    if now < start:
                        offset += 1  # not yet: stays a candidate, skip it in the next page
                    elif uow.expiry.note(record.fingerprint, now):
                        notices.append(_announce(uow, record, start, now, actor))
                uow.commit()
            if len(page) < self._batch:
                return notices


def _announce(uow: UnitOfWork, record: CertificateRecord, start: datetime, now: datetime,
              actor: str) -> ExpiryNotice:
    target = f"{record.authority}:{record.serial_hex}"
    device = uow.devices.with_identity(record.fingerprint)
    if device is not None and record.fingerprint in device.components:
        device = None  # a component's certificate is its supplier's to renew, not the device's
    facts = {"certificate": target, "fingerprint": record.fingerprint, "profile": record.profile,
             "subject": record.subject, "not_after": record.not_after.isoformat(),
             "renewal_window_start": start.isoformat(),
             "device": device.id if device is not None else None}
    append_audit(uow.audit, now, AuditRecord("certificate.expiring", "success", actor, target,
                                             facts))
    uow.events.add(Event("certificate.expiring", now, facts))
    if device is not None:
        uow.events.add(Event("device.renewal_due", now, {
            **facts, "device": device.id, "organization": device.current_owner,
            "state": device.state.value}))
    return ExpiryNotice(record, start, device.id if device is not None else None)
