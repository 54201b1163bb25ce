"""Reading and verifying the audit log."""

from __future__ import annotations

from iotpki.core.audit import AuditEntry, AuditProblem, find_audit_problems
from iotpki.core.ports import UnitOfWorkFactory


class AuditTrail:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def entries(self, after: int = 0, limit: int | None = 100) -> list[AuditEntry]:
        with self._uow() as uow:
            return list(uow.audit.entries(after, limit))

    def problems(self) -> tuple[int, list[AuditProblem]]:
        """(number of entries checked, every break in the chain), read in one transaction."""
        with self._uow() as uow:
            entries = list(uow.audit.entries())
            head = uow.audit.head()
        return len(entries), find_audit_problems(entries, head)
