"""In-memory fakes of the core's narrow ports, for core unit tests where a database adds
nothing. Each implements the same `typing.Protocol` as the store (mypy checks it where a
test hands it to a service); none is a mock: they keep state and behave like the store
within the contract the port states. The store's own behaviour (transactions, locks,
PostgreSQL) is tested against the store (tests/test_*.py, docs/testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from iotpki.core.audit.log import GENESIS, AuditEntry, AuditHead


class MemoryAuditRepository:
    """`core.audit.ports.AuditRepository`: the hash-chained log in a list, and its head
    kept apart as the store keeps it (a row of its own)."""

    def __init__(self) -> None:
        self.log: list[AuditEntry] = []
        self.head_entry = AuditHead(0, GENESIS)

    def head_for_update(self) -> AuditHead:
        return self.head_entry

    def head(self) -> AuditHead:
        return self.head_entry

    def append(self, entry: AuditEntry) -> None:
        self.append_many([entry])

    def append_many(self, entries: list[AuditEntry]) -> None:
        self.log.extend(entries)
        if entries:
            self.head_entry = AuditHead(entries[-1].seq, entries[-1].hash)

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]:
        later = [e for e in self.log if e.seq > after]
        return iter(later if limit is None else later[:limit])


@dataclass(frozen=True)
class OwnedAuthority:
    label: str
    organization: str


@dataclass
class MemoryAuthorities:
    """`core.audit.trail.AuthorityOwners`."""

    known: list[OwnedAuthority] = field(default_factory=list)

    def list(self) -> list[OwnedAuthority]:
        return list(self.known)


@dataclass
class AuditOnlyUnitOfWork:
    """`core.audit.trail.AuditUnitOfWork` over the memory repositories. Reads only: a
    commit is recorded, nothing is rolled back (the trail writes nothing)."""

    audit: MemoryAuditRepository = field(default_factory=MemoryAuditRepository)
    authorities: MemoryAuthorities = field(default_factory=MemoryAuthorities)
    commits: int = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1
