"""What revocation needs stored: status by (authority, serial), published CRLs, CRL shards."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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

    def crl_entries(self, authority: str, shard: int | None = None) -> Iterator[RevokedEntry]:
        """The same as CRL entries, streamed: the fast path of a full CRL (RFC 5280 §5.1).
        `shard`: those of one CRL shard; None: those in no shard (an unsharded CA's all)."""
        ...

    def changed_since(self, authority: str, seq: int,
                      shard: int | None = None) -> list[StatusEntry]:
        """Certificates whose status changed after counter value `seq` (delta CRL, caches);
        `shard` as in `crl_entries`."""
        ...

    def shard_changes(self, authority: str, seq: int) -> Mapping[int | None, int]:
        """CRL shard → the newest counter value stamped on one of its certificates, for the
        shards with a change after `seq` (which shards need a new CRL); None: the
        certificates in no shard (the authority's own CRL)."""
        ...


class CRLRepository(Protocol):
    """Published CRLs by scope: the authority's own (`shard` None) or one CRL shard's, each
    with its own number sequence (RFC 5280 §5.2.3: per scope)."""

    def lock_number(self, authority: str, shard: int | None = None) -> int:
        """The last CRL number used, locked until the transaction ends (one publisher)."""
        ...

    def set_number(self, authority: str, number: int, shard: int | None = None) -> None: ...

    def add(self, crl: PublishedCRL) -> None: ...

    def latest(self, authority: str, kind: CRLKind,
               shard: int | None = None) -> PublishedCRL | None: ...

    def latest_info(self, authority: str, kind: CRLKind,
                    shard: int | None = None) -> CRLInfo | None:
        """Cheap: the newest CRL of that kind, without its DER."""
        ...


@dataclass(frozen=True)
class CRLShard:
    authority: str
    shard: int
    expires_at: datetime  # every certificate in it has expired by then


class CRLShardRepository(Protocol):
    """The CRL shards of sharded authorities and their build leases."""

    def register(self, authority: str, shard: int, expires_at: datetime) -> None:
        """Make the shard known (idempotent: a shard registered already stays as it is)."""
        ...

    def live(self, now: datetime) -> list[CRLShard]:
        """Every shard still holding an unexpired certificate."""
        ...

    def has_live(self, authority: str, now: datetime) -> bool:
        """Whether the authority has a live shard (its own CRL then covers only the
        certificates in no shard)."""
        ...

    def claim(self, authority: str, shard: int, holder: str, now: datetime,
              until: datetime) -> bool:
        """Take the shard's build lease for `holder` until `until` if nobody holds it at
        `now` (compare-and-set: of several nodes, one wins)."""
        ...

    def release(self, authority: str, shard: int, holder: str) -> None:
        """Give the lease back (only `holder`'s own)."""
        ...
