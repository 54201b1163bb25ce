"""What revocation needs stored: status by (authority, serial), published CRLs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Protocol

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.revocation.status import (
    CRLInfo,
    CRLKind,
    PublishedCRL,
    StatusEntry,
)
from iotpki.wire.crl import RevokedEntry


class RevocationIndex(Protocol):
    """Revocation facts by (authority, serial), and a per-authority change counter."""

    def record_change(
        self, authority: str, serial: int, at: datetime, *, released_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> int:
        """Bump the authority's counter in this transaction and stamp the certificate with it."""
        ...

    def record_bulk_change(
        self, authority: str, serials: list[str], status: CertificateStatus, at: datetime,
        reason: str, invalidity_date: datetime | None,
    ) -> int:
        """Revoke (or hold) many certificates of one authority: one counter bump, their new
        status stamped with it; a held certificate keeps its original revocation time."""
        ...

    def counter(self, authority: str) -> int: ...

    def counters(self) -> Mapping[str, int]:
        """Every authority's counter: one cheap query that nodes poll to expire caches."""
        ...

    def lookup(self, authority: str, serial: int) -> StatusEntry | None:
        """None if the authority never issued this serial."""
        ...

    def revoked(self, authority: str) -> Iterator[StatusEntry]:
        """Every revoked or held certificate of the authority."""
        ...

    def crl_entries(self, authority: str) -> Iterator[RevokedEntry]:
        """The same as CRL entries, streamed: the fast path of a full CRL (RFC 5280 §5.1)."""
        ...

    def changed_since(self, authority: str, seq: int) -> list[StatusEntry]:
        """Certificates whose status changed after counter value `seq` (delta CRL, caches)."""
        ...


class CRLRepository(Protocol):
    def lock_number(self, authority: str) -> int:
        """The last CRL number used, locked until the transaction ends (one publisher)."""
        ...

    def set_number(self, authority: str, number: int) -> None: ...

    def add(self, crl: PublishedCRL) -> None: ...

    def latest(self, authority: str, kind: CRLKind) -> PublishedCRL | None: ...

    def latest_info(self, authority: str, kind: CRLKind) -> CRLInfo | None:
        """Cheap: the newest CRL of that kind, without its DER."""
        ...
