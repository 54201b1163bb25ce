"""Transactions and nonces of a message-based enrollment protocol (RFC 9483 §3.5, §4.1.1,
§4.4), kept in the database so that any node may receive the next message of a
transaction: the protocol-free service behind the CMP adapter's `Transactions` port
(`protocols/cmp/ports.py`).

- `note_nonce`: a client's senderNonce is recorded once; a second time it is a replay.
- `open` / `move`: a transaction is stored when its answer goes out and moved from one
  state to the next by compare-and-set (two messages racing: one wins), with the audit
  entry of the move in the same database transaction.
- `unconfirmed_update_of`: the key update of a certificate that still awaits its
  confirmation (one open key update per certificate, RFC 9483 §4.1.3).
- `record`: audit a decision the adapter made itself (a refusal before the core was
  reached, a client's error report).
- `attached`: the senderNonce and the transaction of an enrollment request, written in the
  transaction that stores the certificate (`core.ca.issuance.AttachedWrites`): one write
  transaction per request, and no certificate without the state its answer promises.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cryptography import x509

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.audit.ports import AuditRepository
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ports import Transaction
from iotpki.core.ra.ports import CMPRepository
from iotpki.core.ra.transactions import CMPTransaction, TransactionState


class TransactionUnitOfWork(Transaction, Protocol):
    @property
    def cmp(self) -> CMPRepository: ...

    @property
    def audit(self) -> AuditRepository: ...


class TransactionConflictError(Exception):
    """The storing transaction found the senderNonce recorded (`what` "nonce": a replay) or
    the transactionID taken ("transaction"); nothing of the request was written."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class RequestRecord:
    """An enrollment request's senderNonce and, for its outcome, the transaction to open
    (None: none, e.g. a refusal), written in the issuing transaction. `written` is True
    once the transaction that stored the outcome wrote them."""

    def __init__(self, nonce: bytes, at: datetime,
                 transaction: Callable[[Issued | Rejected], CMPTransaction | None]) -> None:
        self._nonce = nonce
        self._at = at
        self._transaction = transaction
        self.written = False

    def write(self, uow: TransactionUnitOfWork, outcome: Issued | Rejected) -> None:
        transaction = self._transaction(outcome)
        if transaction is None:
            if not uow.cmp.note_nonce(self._nonce, self._at):
                raise TransactionConflictError("nonce")
            self.written = True
            return
        # Both inserts at once; on a replayed nonce the unit is rolled back anyway.
        noted, added = uow.cmp.note_nonce_and_add(self._nonce, self._at, transaction)
        if not noted:
            raise TransactionConflictError("nonce")
        if not added:  # a first message (RFC 9483 §3.5): a taken id is another's, even one
            raise TransactionConflictError("transaction")  # that committed while we waited
        self.written = True


def _open(uow: TransactionUnitOfWork, transaction: CMPTransaction) -> bool:
    # Inserted first (nothing if the id exists): a new transaction, the common case, is one
    # statement; an existing one (an approval polled for) moves from the state read.
    return uow.cmp.add_transaction(transaction) or _move_existing(uow, transaction)


def _move_existing(uow: TransactionUnitOfWork, transaction: CMPTransaction) -> bool:
    """Only a request waiting for approval moves on by a later message (its pollReq); a
    transaction in any other state belongs to its own exchange."""
    existing = uow.cmp.get_transaction(transaction.transaction_id)
    return (existing is not None and existing.state is TransactionState.AWAITING_APPROVAL
            and uow.cmp.update_transaction(transaction, existing.state))


class TransactionService:
    def __init__(self, uow: Callable[[], TransactionUnitOfWork],
                 reads: Callable[[], TransactionUnitOfWork] | None = None) -> None:
        self._uow = uow
        self._reads = reads or uow  # look-ups: never SQLite's write lock (issue 21)

    def note_nonce(self, nonce: bytes, at: datetime) -> bool:
        """Record a client's senderNonce; False if it was seen before (a replay)."""
        with self._uow() as uow:
            fresh = uow.cmp.note_nonce(nonce, at)
            uow.commit()
        return fresh

    def nonce_seen(self, nonce: bytes) -> bool:
        """Whether a senderNonce was recorded already (a read; the issuing transaction
        records it, `attached`)."""
        with self._reads() as uow:
            return uow.cmp.nonce_seen(nonce)

    def seen(self, nonce: bytes, transaction_id: str) -> tuple[bool, CMPTransaction | None]:
        """Whether a senderNonce was recorded already, and the transaction of an id, in one
        read (a first message's two freshness checks, RFC 9483 §3.5; issue 21)."""
        with self._reads() as uow:
            return uow.cmp.nonce_seen(nonce), uow.cmp.get_transaction(transaction_id)

    def attached(self, nonce: bytes, at: datetime,
                 transaction: Callable[[Issued | Rejected], CMPTransaction | None]
                 ) -> RequestRecord:
        return RequestRecord(nonce, at, transaction)

    def get(self, transaction_id: str) -> CMPTransaction | None:
        with self._reads() as uow:
            return uow.cmp.get_transaction(transaction_id)

    def open(self, transaction: CMPTransaction) -> bool:
        """Store a transaction, or its next state if it exists (an approval that was polled
        for); False if another message changed it first."""
        with self._uow() as uow:
            stored = _open(uow, transaction)
            uow.commit()
        return stored

    def move(self, transaction: CMPTransaction, expected: TransactionState,
             audit: AuditRecord | None = None) -> bool:
        """Replace if still in state `expected` (with `audit` appended in the same database
        transaction); False if another message or node moved it first."""
        with self._uow() as uow:
            moved = uow.cmp.update_transaction(transaction, expected)
            if moved and audit is not None:
                append_audit(uow.audit, transaction.updated_at, audit)
            uow.commit()
        return moved

    def awaiting_confirmation(self, before: datetime, limit: int) -> list[CMPTransaction]:
        with self._reads() as uow:
            return uow.cmp.awaiting_confirmation(before, limit)

    def unconfirmed_update_of(self, certificate: x509.Certificate) -> CMPTransaction | None:
        """The key update signed by `certificate` whose new certificate awaits its
        confirmation, if any."""
        with self._reads() as uow:
            return uow.cmp.unconfirmed_update_of(certificate)

    def record(self, at: datetime, record: AuditRecord) -> None:
        with self._uow() as uow:
            append_audit(uow.audit, at, record)
            uow.commit()
