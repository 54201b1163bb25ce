"""What the supply chain needs stored: organizations, domains, trust in suppliers, manifests
seen, and keys an organization uses itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from iotpki.core.ca.authority import Authority
from iotpki.core.supply_chain.domain import Domain, DomainNetwork
from iotpki.core.supply_chain.organization import Organization


class OrganizationRepository(Protocol):
    def add(self, organization: Organization) -> None: ...

    def get(self, label: str) -> Organization | None: ...

    def list(self) -> list[Organization]: ...


class DomainRepository(Protocol):
    def add(self, domain: Domain) -> None:
        """Raise `ConflictError` if another organization owns the name already."""
        ...

    def owner(self, name: str) -> str | None: ...

    def owners(self, names: Sequence[str]) -> dict[str, str]:
        """Owner organization of each of `names` that is owned (one query)."""
        ...

    def add_network(self, network: DomainNetwork) -> None:
        """Raise `ConflictError` if that exact network is owned already."""
        ...

    def networks(self) -> list[DomainNetwork]:
        """Every network a domain owns (few: checked in memory for each IP SAN)."""
        ...

    def list(self, organization: str | None = None) -> list[Domain]: ...


class TrustRepository(Protocol):
    """Which suppliers an organization trusts, and with which anchors (authority labels)."""

    def add(self, organization: str, supplier: str, anchor: str, at: datetime) -> None: ...

    def anchors(self, organization: str, supplier: str | None = None) -> list[Authority]: ...

    def suppliers(self, organization: str) -> list[tuple[str, str]]:
        """(supplier, anchor) pairs."""
        ...


@dataclass(frozen=True)
class ImportedDelivery:
    """A manifest imported: who sent it, its delivery id, how many entries it held."""

    row: int  # the keyset position
    sender: str
    delivery_id: str
    entries: int
    imported_at: datetime


class DeliveryRepository(Protocol):
    """Manifests seen, so that a delivery is imported once (replay protection)."""

    def add(self, sender: str, recipient: str, delivery_id: str, direction: str,
            entries: int, at: datetime) -> bool:
        """False if this delivery was recorded before."""
        ...

    def imported(self, recipient: str, limit: int,
                 before: int | None = None) -> list[ImportedDelivery]:
        """The manifests the recipient imported, newest first (`before`: a keyset page
        after the delivery of that row id)."""
        ...
