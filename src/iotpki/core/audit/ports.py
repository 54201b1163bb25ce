"""The audit log's store: a hash chain appended under a lock on its head."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from iotpki.core.audit.log import AuditEntry, AuditHead


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
