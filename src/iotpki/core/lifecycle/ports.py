"""What lifecycle management needs stored: devices with their identities, expiry notices,
renewal windows pulled forward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.lifecycle.device import Device, DeviceIdentity, DeviceState


class DeviceRepository(Protocol):
    def add(self, device: Device) -> None: ...

    def get(self, device_id: str) -> Device | None: ...

    def containing(self, organization: str, component: str) -> Device | None:
        """The organization's device built with this component, if any."""
        ...

    def with_identity(self, fingerprint: str) -> Device | None:
        """The device an identity was issued for, or that a component went into."""
        ...

    def named(self, organization: str, name: str) -> Device | None: ...

    def link(self, device_id: str, fingerprint: str, stage: str, at: datetime) -> None:
        """Add an identity to the device's history (in the transaction that issued it)."""
        ...

    def move(self, device_id: str, expected: DeviceState, state: DeviceState, owner: str,
             at: datetime) -> bool:
        """Set state and owner if the device is still in state `expected`; False otherwise
        (another event moved it first)."""
        ...

    def history(self, device_id: str) -> list[DeviceIdentity]:
        """Component identities first, then the linked identities in the order issued."""
        ...

    def find(self, owner: str | None, state: DeviceState | None, limit: int,
             offset: int, after: tuple[datetime, str] | None = None) -> list[Device]:
        """Oldest first; `after`: keyset pagination, only devices after (created_at, id)."""
        ...


class ExpiryRepository(Protocol):
    def candidates(self, profile: str, expires_before: datetime, now: datetime,
                   limit: int) -> list[CertificateRecord]:
        """Good certificates of the profile, unexpired, expiring before `expires_before`,
        not yet announced; soonest first."""
        ...

    def note(self, fingerprint: str, at: datetime) -> bool:
        """Remember the announcement; False if it was made before (by another node)."""
        ...


@dataclass(frozen=True)
class RenewalPull:
    """Certificates of `authority` (and `profile`, if set) issued before `at` renew within
    `spread` after it."""

    authority: str
    profile: str | None
    at: datetime
    spread: timedelta
    reason: str


class RenewalPullRepository(Protocol):
    """Windows the operator pulled forward (`core.lifecycle.renewal_info`)."""

    def add_pull(self, pull: RenewalPull) -> None: ...

    def pulls(self, authority: str) -> list[RenewalPull]: ...
