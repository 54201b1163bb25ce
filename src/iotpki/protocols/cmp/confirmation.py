"""Certificates whose certConf never came (RFC 9483 §4.1.1, RFC 9810 §5.3.18).

With explicit confirmation the certificate is stored and published when it is issued; if
the client does not confirm it within `timeout`, the server may no longer assume the client
has it and revokes it. The reason is cessationOfOperation (RFC 5280 §5.3.1), as for a
certificate the client rejected in its certConf: the certificate was never taken into use,
and nothing suggests its key was compromised.

`expire()` runs in every node's periodic worker; moving the transaction out of
awaiting-conf is the compare-and-set that lets exactly one node revoke it. A certConf that
arrives afterwards finds no transaction awaiting it (badRequest).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cryptography import x509

from iotpki.core.audit.log import AuditRecord
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.clock import Clock
from iotpki.core.errors import ConflictError, NotFoundError
from iotpki.core.ra.transactions import CMPTransaction, TransactionState
from iotpki.protocols.cmp.ports import Certificates, Revocation, Transactions

ACTOR = "cmp:confirmation-timeout"
REASON = x509.ReasonFlags.cessation_of_operation
DEFAULT_TIMEOUT = timedelta(minutes=10)


class ConfirmationTimeout:
    def __init__(self, transactions: Transactions, certificates: Certificates,
                 revocation: Revocation, clock: Clock,
                 timeout: timedelta = DEFAULT_TIMEOUT, batch: int = 100) -> None:
        self._transactions = transactions
        self._certificates = certificates
        self._revocation = revocation
        self._clock = clock
        self.timeout = timeout
        self._batch = batch

    def expire(self) -> int:
        """Close every transaction left unconfirmed for longer than `timeout` and revoke its
        certificate; the number this node closed."""
        now = self._clock.now()
        stale = self._transactions.awaiting_confirmation(now - self.timeout, self._batch)
        return sum(1 for transaction in stale if self._close(transaction))

    def _close(self, transaction: CMPTransaction) -> bool:
        now = self._clock.now()
        moved = self._transactions.move(
            replace(transaction, state=TransactionState.EXPIRED, updated_at=now),
            TransactionState.AWAITING_CONFIRMATION)
        if not moved:
            return False  # confirmed meanwhile, or another node closed it
        record = self._record(transaction.certificate)
        outcome = "success"
        if record is not None:
            try:
                self._revocation.revoke(record.authority, record.serial, REASON, ACTOR)
            except (ConflictError, NotFoundError):
                outcome = "already-revoked"
        self._transactions.record(now, AuditRecord(
            "cmp.confirmation.expired", outcome, ACTOR,
            f"{record.authority}:{record.serial_hex}" if record else transaction.authority,
            {"transaction": transaction.transaction_id, "reason": REASON.value,
             "waited_seconds": int((now - transaction.updated_at).total_seconds())}))
        return True

    def _record(self, certificate: str | None) -> CertificateRecord | None:
        if certificate is None:
            return None
        try:
            return self._certificates.get_by_fingerprint(certificate)
        except NotFoundError:
            return None
