"""Requests waiting on an operator's decision (the manual-approval enrollment method).

RFC 7030 §4.2.3 (HTTP 202 + Retry-After) and RFC 9483 §4.4 (pollReq/pollRep) let the
client come back later; the request keeps everything needed to issue once approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
