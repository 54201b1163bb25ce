"""Protocol-neutral outcomes of a request. Each adapter maps them to its wire form."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.errors import RefusalReason


@dataclass(frozen=True)
class Issued:
    record: CertificateRecord
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last


@dataclass(frozen=True)
class Pending:
    """Waiting on a decision (manual approval); the client asks again later."""

    request_id: str
    retry_after_seconds: int


@dataclass(frozen=True)
class Rejected:
    reason: RefusalReason
    detail: str


Outcome = Issued | Pending | Rejected
