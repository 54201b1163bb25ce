"""The audit log: append-only, hash-chained (each entry commits to the one before it).

entry.hash = SHA-256(prev_hash || canonical JSON of the entry's content). The
sequence number is not hashed: order is carried by the chain itself, which is
what lets `verify_audit_chain` tell a reordered entry from a changed one. The
log's head (last sequence number and hash) is kept apart, so a deleted tail
is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from iotpki.core.audit.bounds import bounded, bounded_value
from iotpki.wire.errors import PKIError

GENESIS = "0" * 64
# With the truncation marker (about 110 characters) these fit the store's actor (255) and
# target (1024) columns.
ACTOR_LIMIT, TARGET_LIMIT = 128, 800


@dataclass(frozen=True)
class AuditRecord:
    """What happened, as the caller states it."""

    action: str  # e.g. "certificate.issue", "certificate.revoke", "authority.create"
    outcome: str  # "success" or "refused"
    actor: str
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditHead:
    seq: int
    hash: str


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    record: AuditRecord
    prev_hash: str
    hash: str
    # The details as the log stores them, when encoded already (`SealedRecord`).
    details_json: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SealedRecord:
    """A record ready to be chained: bounded, its hashed content and its stored details
    encoded. Everything of an entry but the link to the log's head, so that a writer does
    this work before it takes the write lock and, under it, only hashes (issue 21)."""

    at: datetime
    record: AuditRecord
    content: bytes
    details_json: str


def _content(at: datetime, record: AuditRecord) -> bytes:
    body = {
        "at": at.isoformat(),
        "action": record.action,
        "outcome": record.outcome,
        "actor": record.actor,
        "target": record.target,
        "details": record.details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def bounded_record(record: AuditRecord) -> AuditRecord:
    """`record` with actor, target and details bounded (`bounds.bounded_value`): a client
    that sends megabytes as a user name or key id writes a kilobyte into the log."""
    return AuditRecord(record.action, record.outcome, bounded(record.actor, ACTOR_LIMIT),
                       bounded(record.target, TARGET_LIMIT), bounded_value(dict(record.details)))


def encode_details(details: Mapping[str, Any]) -> str:
    """The details as the log's rows keep them (JSON, keys sorted)."""
    return _DETAILS.encode(details)


_DETAILS = json.JSONEncoder(sort_keys=True, default=str)


def entry_hash(prev_hash: str, at: datetime, record: AuditRecord) -> str:
    return _linked_hash(prev_hash, _content(at, record))


def _linked_hash(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + content).hexdigest()


def seal(at: datetime, record: AuditRecord) -> SealedRecord:
    """`record` bounded (client-supplied text) and encoded, not yet chained."""
    record = bounded_record(record)
    return SealedRecord(at, record, _content(at, record), encode_details(record.details))


def chain_sealed(head: AuditHead, sealed: SealedRecord) -> AuditEntry:
    """The entry that follows `head`: one SHA-256 over work done before."""
    return AuditEntry(head.seq + 1, sealed.at, sealed.record, head.hash,
                      _linked_hash(head.hash, sealed.content), sealed.details_json)


def chain_entry(head: AuditHead, at: datetime, record: AuditRecord) -> AuditEntry:
    """The entry that follows `head`; client-supplied text in it is bounded first."""
    return chain_sealed(head, seal(at, record))


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str  # "changed", "deleted", "reordered", "truncated"
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind}: {self.detail}"


class AuditChainError(PKIError):
    def __init__(self, problems: list[AuditProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def find_audit_problems(entries: Iterable[AuditEntry], head: AuditHead) -> list[AuditProblem]:
    """Walk the log in sequence order and report every break in the chain."""
    problems: list[AuditProblem] = []
    by_hash: dict[str, int] = {}
    prev = AuditHead(0, GENESIS)
    for entry in entries:
        if entry_hash(entry.prev_hash, entry.at, entry.record) != entry.hash:
            problems.append(AuditProblem(entry.seq, "changed", "content does not match its hash"))
        elif entry.prev_hash != prev.hash:
            problems.append(_link_problem(entry, prev, by_hash))
        by_hash[entry.hash] = entry.seq
        prev = AuditHead(entry.seq, entry.hash)
    if head.seq != prev.seq or head.hash != prev.hash:
        problems.append(AuditProblem(
            head.seq, "truncated",
            f"log ends at entry {prev.seq} but its head records entry {head.seq}",
        ))
    return problems


def _link_problem(entry: AuditEntry, prev: AuditHead, by_hash: dict[str, int]) -> AuditProblem:
    if entry.seq != prev.seq + 1:
        missing = f"{prev.seq + 1}" if entry.seq == prev.seq + 2 else f"{prev.seq + 1}-{entry.seq - 1}"
        return AuditProblem(entry.seq, "deleted", f"entry {missing} is missing before it")
    if entry.prev_hash in by_hash:
        return AuditProblem(
            entry.seq, "reordered",
            f"it follows entry {by_hash[entry.prev_hash]}, not entry {prev.seq}",
        )
    return AuditProblem(entry.seq, "reordered", f"it does not follow entry {prev.seq}")


def verify_audit_chain(entries: Iterable[AuditEntry], head: AuditHead) -> None:
    """Raise `AuditChainError` listing every problem; return quietly for an intact log."""
    problems = find_audit_problems(entries, head)
    if problems:
        raise AuditChainError(problems)


class _AuditAppender(Protocol):
    def head_for_update(self) -> AuditHead: ...

    def append(self, entry: AuditEntry) -> None: ...

    def append_many(self, entries: list[AuditEntry]) -> None: ...


def append_audit(log: _AuditAppender, at: datetime, record: AuditRecord) -> AuditEntry:
    """Chain `record` onto the log inside the caller's transaction."""
    entry = chain_entry(log.head_for_update(), at, record)
    log.append(entry)
    return entry


def append_audit_many(
    log: _AuditAppender, at: datetime, records: Iterable[AuditRecord | SealedRecord]
) -> list[AuditEntry]:
    """Chain several records in order with one head lock (batch issuance). Records sealed
    beforehand (`seal`) cost one hash each here, inside the caller's transaction."""
    head = log.head_for_update()
    entries = []
    for record in records:
        entry = chain_sealed(head, record if isinstance(record, SealedRecord)
                             else seal(at, record))
        entries.append(entry)
        head = AuditHead(entry.seq, entry.hash)
    if entries:
        log.append_many(entries)
    return entries
