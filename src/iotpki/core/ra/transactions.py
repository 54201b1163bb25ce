"""State a CMP server keeps between messages (RFC 9483 §3.5, §4.1.1, §4.4).

- A transaction whose certificate awaits the client's certConf (explicit confirmation), or
  whose request awaits an operator (polling), keyed by transactionID, with the senderNonce
  of our last answer (the client must echo it as recipNonce) and what authenticated the
  client (registration for MAC protection, certificate for signature protection).
- Every senderNonce seen, so that a replayed message is refused.
- The CMP protection certificate of each authority (its key stays in the key backend).

Kept in the database, never only in a node's memory: any node may receive the certConf.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509


class TransactionState(StrEnum):
    AWAITING_CONFIRMATION = "awaiting-conf"
    AWAITING_APPROVAL = "awaiting-approval"  # manual approval: the client polls
    CONFIRMED = "confirmed"
    REJECTED = "rejected"  # the client rejected the certificate in its certConf
    EXPIRED = "expired"  # no certConf in time: revoked (protocols.cmp.confirmation)


@dataclass(frozen=True)
class CMPTransaction:
    transaction_id: str  # hex
    state: TransactionState
    body_type: str  # the request that opened it: ir, cr, kur, p10cr
    our_nonce: bytes  # senderNonce of our last answer
    cert_req_id: int
    authority: str
    created_at: datetime
    updated_at: datetime
    registration: str | None = None  # MAC protection: whose sealed secret keys the MAC
    signer: x509.Certificate | None = None  # signature protection: the client's certificate
    certificate: str | None = None  # fingerprint of the certificate awaiting certConf
    pending_request: str | None = None  # manual approval request id
