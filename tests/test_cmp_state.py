"""The store behind the CMP adapter's ports, on SQLite and PostgreSQL: the shared budget of
failed MAC checks (`core.ra.failure_budget`, migration 0012) and the open key update of a
certificate (`core.ra.transaction_service`, RFC 9483 §4.1.3)."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta

from iotpki.app import PKI
from iotpki.core.errors import RefusalReason
from iotpki.core.outcomes import Rejected
from iotpki.core.ra.failure_budget import FailureBudget, Throttled
from iotpki.core.ra.transaction_service import (
    RequestRecord,
    TransactionConflictError,
    TransactionService,
)
from iotpki.core.ra.transactions import CMPTransaction, TransactionState

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=1)


def test_failure_budget_counts_within_the_window_and_prunes(demo_pki: PKI) -> None:
    budget = FailureBudget(demo_pki.database.unit_of_work, {"reference": 3, "address": 5},
                           WINDOW)
    keys = {"reference": "reg-1", "address": "192.0.2.1"}
    for second in range(3):
        assert budget.check(keys, T0 + timedelta(seconds=second)) is None
        budget.note_failure(keys, T0 + timedelta(seconds=second))
    later = T0 + timedelta(seconds=10)
    assert budget.check(keys, later) == Throttled("reference", T0 + WINDOW)
    assert budget.check({"reference": "reg-2", "address": "192.0.2.1"}, later) is None
    assert budget.check(keys, T0 + WINDOW + timedelta(seconds=1)) is None  # the first left
    # Failures older than the retention are forgotten as new ones are noted.
    budget.note_failure({"reference": "reg-3", "address": "192.0.2.9"}, T0 + timedelta(hours=2))
    with demo_pki.database.unit_of_work() as uow:
        assert uow.failed_checks.since("reference", "reg-1", T0 - WINDOW) == (0, None)


def test_the_open_key_update_of_a_certificate(demo_pki: PKI) -> None:
    transactions = TransactionService(demo_pki.database.unit_of_work)
    authority = demo_pki.authorities.get("operatorco-operations")
    signer, other = authority.certificate, demo_pki.authorities.get("operatorco-root").certificate

    def opened(body_type: str, state: TransactionState) -> CMPTransaction:
        transaction = CMPTransaction(os.urandom(16).hex(), state, body_type, os.urandom(16), 0,
                                     authority.label, T0, T0, signer=signer,
                                     certificate="00" * 32)
        assert transactions.open(transaction)
        return transaction

    opened("cr", TransactionState.AWAITING_CONFIRMATION)
    opened("kur", TransactionState.CONFIRMED)
    assert transactions.unconfirmed_update_of(signer) is None
    kur = opened("kur", TransactionState.AWAITING_CONFIRMATION)
    found = transactions.unconfirmed_update_of(signer)
    assert found is not None and found.transaction_id == kur.transaction_id
    assert transactions.unconfirmed_update_of(other) is None
    done = dataclasses.replace(kur, state=TransactionState.CONFIRMED)
    assert transactions.move(done, TransactionState.AWAITING_CONFIRMATION)
    assert transactions.unconfirmed_update_of(signer) is None


def test_an_enrollment_records_its_nonce_and_opens_its_transaction_at_once(
        demo_pki: PKI) -> None:
    """`RequestRecord.write` (the storing transaction of an enrollment): the senderNonce and
    the transaction in one round trip; a replayed nonce is a conflict that writes nothing;
    a transaction id that exists is a conflict, whatever its state (RFC 9483 §3.5: a first
    message's id must be new; an approval polled for moves through `open`)."""
    authority = demo_pki.authorities.get("operatorco-operations").label
    nonce = os.urandom(16)

    def transaction(transaction_id: str, state: TransactionState) -> CMPTransaction:
        return CMPTransaction(transaction_id, state, "cr", os.urandom(16), 0, authority, T0, T0)

    def write(nonce: bytes, opened: CMPTransaction) -> str | None:
        record = RequestRecord(nonce, T0, lambda _outcome: opened)
        try:
            with demo_pki.database.unit_of_work() as uow:
                record.write(uow, Rejected(RefusalReason.NOT_REGISTERED, "test"))
                uow.commit()
        except TransactionConflictError as conflict:
            assert not record.written
            return conflict.what
        assert record.written
        return None

    first = transaction(os.urandom(16).hex(), TransactionState.AWAITING_APPROVAL)
    assert write(nonce, first) is None
    replayed = transaction(os.urandom(16).hex(), TransactionState.AWAITING_APPROVAL)
    assert write(nonce, replayed) == "nonce"
    taken = dataclasses.replace(first, state=TransactionState.AWAITING_CONFIRMATION)
    assert write(os.urandom(16), taken) == "transaction"
    transactions = TransactionService(demo_pki.database.unit_of_work)
    assert transactions.get(replayed.transaction_id) is None  # rolled back with its nonce
    stored = transactions.get(first.transaction_id)
    assert stored is not None and stored.state is TransactionState.AWAITING_APPROVAL
    # `open` (a pollReq answered): an approval moves on; a transaction in another state not
    assert transactions.open(taken)
    assert not transactions.open(dataclasses.replace(taken, state=TransactionState.CONFIRMED))
    stored = transactions.get(first.transaction_id)
    assert stored is not None and stored.state is TransactionState.AWAITING_CONFIRMATION
