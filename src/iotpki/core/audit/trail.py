"""Reading and verifying the audit log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from iotpki.core.audit.log import AuditEntry, AuditProblem, find_audit_problems
from iotpki.core.audit.ports import AuditRepository
from iotpki.core.ca.ports import AuthorityRepository
from iotpki.core.ports import Transaction

_SCAN = 2_000  # entries read per round when filtering by organization
# Detail fields that name the organization an entry concerns.
_ORGANIZATION_FIELDS = ("organization", "sender", "recipient")


def organization_of(entry: AuditEntry, authorities: Mapping[str, str]) -> set[str]:
    """The organizations an entry concerns: the one its principal acts for (actor
    `principal:<id>@<org>`), those its details name, and the owner of the authority in its
    target (`<authority>:<serial>` or an authority label)."""
    record = entry.record
    found = {str(record.details[f]) for f in _ORGANIZATION_FIELDS if record.details.get(f)}
    actor_org = record.actor.rpartition("@")[2] if record.actor.startswith("principal:") else ""
    if actor_org:
        found.add(actor_org)
    owner = authorities.get(record.target.partition(":")[0])
    if owner is not None:
        found.add(owner)
    return found


class AuditUnitOfWork(Transaction, Protocol):
    """The repositories the audit log uses."""

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def authorities(self) -> AuthorityRepository: ...


class AuditTrail:
    def __init__(self, uow: Callable[[], AuditUnitOfWork]) -> None:
        self._uow = uow

    def entries(self, after: int = 0, limit: int | None = 100) -> list[AuditEntry]:
        with self._uow() as uow:
            return list(uow.audit.entries(after, limit))

    def entries_for(self, organization: str, after: int = 0,
                    limit: int = 100) -> list[AuditEntry]:
        """Up to `limit` entries after sequence number `after` that concern `organization`
        (an API principal sees only its own organization's part of the log)."""
        found: list[AuditEntry] = []
        with self._uow() as uow:
            owners = {a.label: a.organization for a in uow.authorities.list()}
            while len(found) < limit:
                batch = list(uow.audit.entries(after, _SCAN))
                found.extend(e for e in batch if organization in organization_of(e, owners))
                if len(batch) < _SCAN:
                    break
                after = batch[-1].seq
        return found[:limit]

    def problems(self) -> tuple[int, list[AuditProblem]]:
        """(number of entries checked, every break in the chain), read in one transaction."""
        with self._uow() as uow:
            entries = list(uow.audit.entries())
            head = uow.audit.head()
        return len(entries), find_audit_problems(entries, head)
