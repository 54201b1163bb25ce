"""The device inventory of an organization: the devices it owns now, filtered by state and by
what their identities say (profile, operational domain, expiry, a serial, fingerprint, name,
common name or operational domain), a page at a time.

Pages are keyset pages (ordered by creation time and id, the next page starting after the
last device shown), so page 1,000 costs what page 1 costs, however large the fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from iotpki.core.lifecycle.device import Device, DeviceState
from iotpki.core.ports import Transaction

MAX_PAGE = 200


@dataclass(frozen=True)
class DevicePosition:
    """Where a page ends: the last device's creation time and id."""

    created_at: datetime
    device_id: str


@dataclass(frozen=True)
class DeviceQuery:
    owner: str
    state: DeviceState | None = None
    profile: str | None = None  # a device with an identity of this profile
    domain: str | None = None  # ... naming this operational domain
    expires_before: datetime | None = None  # ... not revoked, expiring before this time
    # a device name, or an identity's serial or fingerprint, CN prefix or operational domain
    search: str | None = None
    after: DevicePosition | None = None
    limit: int = 50


@dataclass(frozen=True)
class DevicePage:
    devices: tuple[Device, ...]
    next: DevicePosition | None  # None on the last page


class DeviceInventoryRepository(Protocol):
    def page(self, query: DeviceQuery) -> list[Device]:
        """Up to `query.limit` devices after `query.after`, oldest first."""
        ...


class InventoryUnitOfWork(Transaction, Protocol):
    @property
    def device_inventory(self) -> DeviceInventoryRepository: ...


class DeviceInventory:
    def __init__(self, uow: Callable[[], InventoryUnitOfWork]) -> None:
        self._uow = uow

    def page(self, query: DeviceQuery) -> DevicePage:
        limit = max(1, min(query.limit, MAX_PAGE))
        with self._uow() as uow:
            found = uow.device_inventory.page(DeviceQuery(**{**query.__dict__, "limit": limit + 1}))
        more = len(found) > limit
        shown = tuple(found[:limit])
        last = shown[-1] if more and shown else None
        return DevicePage(shown, DevicePosition(last.created_at, last.id) if last else None)
