"""Devices built from components: the record lists the component identities it contains,
and its device certificate can commit to them (`iotpki.wire.binding`).

A device has a lifecycle state (`core.lifecycle.transitions` moves it) and a current owner: the
organization that builds it owns it first; consuming another organization's registration
with one of its identities (the supply-chain hand-over) or an owner-change event moves it.
Its history is the chain of identities issued for it (`DeviceIdentity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from iotpki.core.ca.certificate import CertificateRecord


class DeviceState(StrEnum):
    ACTIVE = "active"  # in service with its current identities
    REGISTERED = "registered"  # waiting to enroll its next identity (new owner or context)
    LOST = "lost"  # its certificates on hold (certificateHold) until found
    MAINTENANCE = "maintenance"  # its certificates on hold until maintenance ends
    STOLEN = "stolen"  # terminal states: certificates revoked for good
    COMPROMISED = "compromised"
    BROKEN = "broken"
    RETIRED = "retired"


COMPONENT_STAGE = "component"


@dataclass(frozen=True)
class Device:
    id: str
    organization: str  # who built it (recorded it)
    name: str
    components: tuple[str, ...]  # SHA-256 fingerprints of the component certificates
    component_digest: bytes
    created_at: datetime
    state: DeviceState = DeviceState.ACTIVE
    owner: str = ""  # the organization that owns it now; "" means `organization`
    state_changed_at: datetime | None = None

    @property
    def current_owner(self) -> str:
        return self.owner or self.organization


@dataclass(frozen=True)
class DeviceIdentity:
    """One identity in a device's history: a component certificate, its device certificate,
    an operational certificate or a renewal of one. `certificate` is None for a supplier's
    component certificate that was not issued here (known by fingerprint only)."""

    fingerprint: str
    stage: str  # "component", or the profile kind: "device", "operational", ...
    linked_at: datetime
    certificate: CertificateRecord | None

    @property
    def status(self) -> str:
        return self.certificate.status.value if self.certificate is not None else "unknown"

    def is_current(self, now: datetime) -> bool:
        """Good or on hold, and not expired: what a lifecycle event acts on."""
        record = self.certificate
        return (record is not None and record.status.value != "revoked"
                and record.not_after > now)
