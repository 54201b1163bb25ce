"""Reading and verifying the audit log."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from iotpki.core.audit.log import AuditEntry, AuditProblem, find_audit_problems
from iotpki.core.audit.ports import AuditRepository
from iotpki.core.ports import Transaction

_SCAN = 2_000  # entries read per round when filtering by organization
MAX_SCAN = 20_000  # entries read for one page at most (a page's cost is bounded)
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


@dataclass(frozen=True)
class AuditPage:
    entries: tuple[AuditEntry, ...]
    next_after: int | None  # the sequence number the next page starts after; None: the end


class OwnedAuthority(Protocol):
    """What the trail reads of an authority: whose it is (the audit log sits below the CA
    subpackage, so it names only these two fields)."""

    @property
    def label(self) -> str: ...

    @property
    def organization(self) -> str: ...


class AuthorityOwners(Protocol):
    def list(self) -> Sequence[OwnedAuthority]: ...


class AuditUnitOfWork(Transaction, Protocol):
    """The repositories the audit log uses."""

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def authorities(self) -> AuthorityOwners: ...


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
        while len(found) < limit:
            page = self.page_for(organization, after, limit - len(found))
            found.extend(page.entries)
            if page.next_after is None:
                break
            after = page.next_after
        return found

    def page_for(self, organization: str, after: int = 0, limit: int = 100,
                 scan: int = MAX_SCAN,
                 matches: Callable[[AuditEntry], bool] | None = None) -> AuditPage:
        """One page of `organization`'s entries after `after` (keyset pagination on the
        sequence number, the primary key), only those `matches` accepts if given. At most
        `scan` entries are read per page, so a page may hold fewer than `limit` entries
        while more follow: `next_after` then names where the next page starts (None at the
        end of the log)."""
        found: list[AuditEntry] = []
        position = after
        with self._uow() as uow:
            owners = {a.label: a.organization for a in uow.authorities.list()}
            while position - after < scan:  # sequence numbers are contiguous
                wanted = min(_SCAN, after + scan - position)
                batch = list(uow.audit.entries(position, wanted))
                for entry in batch:
                    position = entry.seq
                    if organization in organization_of(entry, owners) and (
                            matches is None or matches(entry)):
                        found.append(entry)
                        if len(found) == limit:
                            return AuditPage(tuple(found), position)
                if len(batch) < wanted:
                    return AuditPage(tuple(found), None)  # the end of the log
        return AuditPage(tuple(found), position)  # this page's scan is spent

    def last_seq(self) -> int:
        """The sequence number of the newest entry (0 for an empty log)."""
        with self._uow() as uow:
            return uow.audit.head().seq

    def problems(self) -> tuple[int, list[AuditProblem]]:
        """(number of entries checked, every break in the chain), read in one transaction."""
        with self._uow() as uow:
            entries = list(uow.audit.entries())
            head = uow.audit.head()
        return len(entries), find_audit_problems(entries, head)
