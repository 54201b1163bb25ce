"""CMP server state: transactions and seen nonces (`core.ra.transactions`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from iotpki.core.ra.transactions import CMPTransaction, TransactionState
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared, execute_together
from iotpki.store.schema import authorities, cmp_nonces, cmp_transactions

# Prepared (store.prepared): every CMP request checks its nonce and its transaction.
_NONCE_SEEN = Prepared(select(cmp_nonces.c.nonce).where(cmp_nonces.c.nonce == bindparam("nonce")))


def _insert_new(table: Table) -> Callable[[str], Executable]:
    """INSERT … ON CONFLICT DO NOTHING: a row whose key exists (a replayed nonce, a
    transaction another request opened meanwhile) inserts nothing and counts 0 rows, with
    no look-up before it and no SAVEPOINT around it; these run under the write lock."""
    def build(dialect: str) -> Executable:
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        return insert_(table).on_conflict_do_nothing()
    return build


_NOTE_NONCE = Prepared(_insert_new(cmp_nonces), ("nonce", "seen_at"))
# Writes (store.prepared: the one write path).
_TRANSACTION_COLUMNS = ("transaction_id", "state", "body_type", "our_nonce", "cert_req_id",
                        "authority_id", "registration", "signer", "certificate",
                        "pending_request", "created_at", "updated_at")  # the keys of `_row`
_ADD_TRANSACTION = Prepared(_insert_new(cmp_transactions), _TRANSACTION_COLUMNS)
_UPDATE_TRANSACTION = Prepared(update(cmp_transactions).where(
    cmp_transactions.c.transaction_id == bindparam("old_id"),
    cmp_transactions.c.state == bindparam("expected")), _TRANSACTION_COLUMNS)
_TRANSACTION = Prepared(select(*cmp_transactions.c).where(
    cmp_transactions.c.transaction_id == bindparam("transaction_id")))


class _Row(dict[str, Any]):
    """A prepared statement's row read by column name, like SQLAlchemy's."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


class SQLCMPRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def nonce_seen(self, nonce: bytes) -> bool:
        return _NONCE_SEEN.first(self._conn, {"nonce": nonce.hex()}) is not None

    def note_nonce(self, nonce: bytes, at: datetime) -> bool:
        # False for a nonce seen before, a concurrent request's included.
        return _NOTE_NONCE.execute(self._conn, {"nonce": nonce.hex(), "seen_at": at}) == 1

    def add_transaction(self, transaction: CMPTransaction) -> bool:
        return _ADD_TRANSACTION.execute(self._conn, self._row(transaction)) == 1

    def note_nonce_and_add(self, nonce: bytes, at: datetime,
                           transaction: CMPTransaction) -> tuple[bool, bool]:
        noted, added = execute_together(self._conn, [
            (_NOTE_NONCE, {"nonce": nonce.hex(), "seen_at": at}),
            (_ADD_TRANSACTION, self._row(transaction))])
        return noted == 1, added == 1

    def get_transaction(self, transaction_id: str) -> CMPTransaction | None:
        row = _TRANSACTION.first(self._conn, {"transaction_id": transaction_id})
        if row is None:
            return None
        return self._transaction(_Row(zip(cmp_transactions.c.keys(), row, strict=True)))

    def update_transaction(self, transaction: CMPTransaction, expected: TransactionState) -> bool:
        return _UPDATE_TRANSACTION.execute(self._conn, {
            **self._row(transaction), "old_id": transaction.transaction_id,
            "expected": expected.value}) == 1

    def awaiting_confirmation(self, before: datetime, limit: int) -> list[CMPTransaction]:
        rows = self._conn.execute(select(cmp_transactions).where(
            cmp_transactions.c.state == TransactionState.AWAITING_CONFIRMATION.value,
            cmp_transactions.c.updated_at < before).order_by(
            cmp_transactions.c.updated_at).limit(limit)).all()
        return [self._transaction(row) for row in rows]

    def unconfirmed_update_of(self, certificate: x509.Certificate) -> CMPTransaction | None:
        row = self._conn.execute(select(cmp_transactions).where(
            cmp_transactions.c.state == TransactionState.AWAITING_CONFIRMATION.value,
            cmp_transactions.c.body_type == "kur",
            cmp_transactions.c.signer == certificate.public_bytes(Encoding.DER)).limit(1)).first()
        return self._transaction(row) if row is not None else None

    def _authority_id(self, authority: str) -> int:
        return int(self._ids.id_of(self._conn, authorities, authority))

    def _row(self, t: CMPTransaction) -> dict[str, Any]:
        return {
            "transaction_id": t.transaction_id, "state": t.state.value, "body_type": t.body_type,
            "our_nonce": t.our_nonce, "cert_req_id": t.cert_req_id,
            "authority_id": self._authority_id(t.authority), "registration": t.registration,
            "signer": t.signer.public_bytes(Encoding.DER) if t.signer is not None else None,
            "certificate": t.certificate, "pending_request": t.pending_request,
            "created_at": t.created_at, "updated_at": t.updated_at,
        }

    def _transaction(self, row: Any) -> CMPTransaction:
        return CMPTransaction(
            transaction_id=row.transaction_id, state=TransactionState(row.state),
            body_type=row.body_type, our_nonce=row.our_nonce, cert_req_id=row.cert_req_id,
            authority=self._ids.label_of(self._conn, authorities, row.authority_id),
            created_at=row.created_at, updated_at=row.updated_at,
            registration=row.registration,
            signer=x509.load_der_x509_certificate(row.signer) if row.signer is not None else None,
            certificate=row.certificate, pending_request=row.pending_request)
