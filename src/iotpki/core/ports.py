"""What the core needs from the outside, as Protocols. The store and key backends implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from iotpki.core.audit import AuditEntry, AuditHead
from iotpki.core.authority import Authority
from iotpki.core.certificate import CertificateRecord, CertificateStatus
from iotpki.core.events import Event
from iotpki.core.organization import Organization


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

    def add_many(self, records: list[CertificateRecord]) -> None:
        """Insert several in one statement; `ConflictError` if any serial is taken."""
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

    def append_many(self, entries: list[AuditEntry]) -> None:
        """Entries already chained to the current head, in order."""
        ...

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]: ...

    def head(self) -> AuditHead: ...


class EventOutbox(Protocol):
    def add(self, event: Event) -> None: ...

    def add_many(self, events: list[Event]) -> None: ...


class UnitOfWork(Protocol):
    """One transaction. Nothing is written unless `commit()` is called inside the `with`."""

    @property
    def organizations(self) -> OrganizationRepository: ...

    @property
    def authorities(self) -> AuthorityRepository: ...

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def events(self) -> EventOutbox: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


