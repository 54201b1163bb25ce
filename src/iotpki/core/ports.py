"""What the core needs from the outside, as Protocols. The store and key backends implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from iotpki.core.audit import AuditEntry, AuditHead
from iotpki.core.authority import Authority
from iotpki.core.certificate import CertificateRecord, CertificateStatus
from iotpki.core.events import Event
from iotpki.core.organization import Organization
from iotpki.core.revocation_status import (
    CRLInfo,
    CRLKind,
    PublishedCRL,
    ResponderRecord,
    StatusEntry,
)
from iotpki.wire.crl import RevokedEntry


class KeyRing(Protocol):
    """Key backends behind one face. A key reference names its backend (`software:…`, `pkcs11:…`).

    `load` returns an object with the `cryptography` private-key interface, so
    `CertificateBuilder.sign()` works whatever holds the key.
    """

    def generate(self, key_type: str, label: str) -> str: ...

    def import_private_key(self, key: Any, label: str) -> str: ...

    def load(self, key_ref: str) -> Any: ...

    def discard(self, key_ref: str) -> None:
        """Remove a key whose authority could not be created (no half-created authority)."""
        ...


class OrganizationRepository(Protocol):
    def add(self, organization: Organization) -> None: ...

    def get(self, label: str) -> Organization | None: ...

    def list(self) -> list[Organization]: ...


class AuthorityRepository(Protocol):
    def add(self, authority: Authority) -> None: ...

    def get(self, label: str) -> Authority | None: ...

    def list(self) -> list[Authority]: ...


@dataclass(frozen=True)
class CertificateQuery:
    authority: str | None = None
    status: CertificateStatus | None = None
    subject_contains: str | None = None
    expires_before: datetime | None = None
    profile: str | None = None
    limit: int = 100
    offset: int = 0


class CertificateRepository(Protocol):
    def add(self, record: CertificateRecord) -> None:
        """Insert; raise `ConflictError` if (authority, serial) is already taken."""
        ...

    def get(self, authority: str, serial: int) -> CertificateRecord | None: ...

    def get_by_fingerprint(self, fingerprint: str) -> CertificateRecord | None: ...

    def find(self, query: CertificateQuery) -> list[CertificateRecord]: ...

    def set_status(
        self, authority: str, serial: int, status: CertificateStatus,
        revoked_at: datetime | None, reason: str | None,
    ) -> None: ...


class AuditRepository(Protocol):
    def head_for_update(self) -> AuditHead:
        """The head of the log, locked until the transaction ends (appends are serialized)."""
        ...

    def append(self, entry: AuditEntry) -> None: ...

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]: ...

    def head(self) -> AuditHead: ...


class EventOutbox(Protocol):
    def add(self, event: Event) -> None: ...


class RevocationIndex(Protocol):
    """Revocation facts by (authority, serial), and a per-authority change counter."""

    def record_change(
        self, authority: str, serial: int, at: datetime, *, released_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> int:
        """Bump the authority's counter in this transaction and stamp the certificate with it."""
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


class OCSPResponderRepository(Protocol):
    def get(self, authority: str) -> ResponderRecord | None: ...

    def put(self, record: ResponderRecord) -> None:
        """Insert or replace the authority's current responder."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Nothing is written unless `commit()` is called inside the `with`."""

    organizations: OrganizationRepository
    authorities: AuthorityRepository
    certificates: CertificateRepository
    audit: AuditRepository
    events: EventOutbox
    revocation: RevocationIndex
    crls: CRLRepository
    ocsp_responders: OCSPResponderRepository

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


