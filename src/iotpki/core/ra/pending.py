"""Requests waiting on an operator's decision (the manual-approval enrollment method).

RFC 7030 §4.2.3 (HTTP 202 + Retry-After) and RFC 9483 §4.4 (pollReq/pollRep) let the
client come back later; the request keeps everything needed to issue once approved.

RFC 7030 §4.2.3: "the client is stateless; it simply sends the same request repeatedly".
A repeated request is recognized by its `request_key`: the digest of the subject and public
key it asks for, not its bytes (a client signs its CertificationRequestInfo again, ECDSA
signatures differ each time, and a challengePassword carrying a channel binding changes
with every TLS session).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from iotpki.wire.csr import decode_csr, request_identity
from iotpki.wire.errors import DecodeError


class PendingStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class PendingRequest:
    id: str
    authority: str
    profile: str
    csr: bytes
    requester: str
    created_at: datetime
    presented: str | None = None  # fingerprint of the client certificate, if any
    status: PendingStatus = PendingStatus.PENDING
    decided_at: datetime | None = None
    decided_by: str | None = None
    certificate: str | None = None  # fingerprint of the certificate issued on approval
    reason: str | None = None
    request_key: str | None = None  # `request_key` of the CSR; None for a CRMF request


def request_key(csr: bytes) -> str | None:
    """SHA-256 (hex) of the DER subject followed by the DER SubjectPublicKeyInfo of a
    PKCS#10 request; None when `csr` is not one (CMP's CRMF requests poll by transaction)."""
    try:
        subject, key = request_identity(decode_csr(csr))
    except DecodeError:
        return None
    return hashlib.sha256(subject + key).hexdigest()
