"""What the CMP adapter needs from the core: narrow ports, each implemented by one
protocol-free core service (named in its docstring) and passed in by `app.py`. The adapter
never opens a unit of work itself, so a test can pass small fakes checked by mypy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509

from iotpki.core.audit.log import AuditRecord
from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import AttachedWrites
from iotpki.core.integration.principal import Principal
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.registration import Registration
from iotpki.core.ra.transaction_service import RequestRecord
from iotpki.core.ra.transactions import CMPTransaction, TransactionState

Outcome = Issued | Pending | Rejected


class Transactions(Protocol):
    """Transactions, nonces and the adapter's own audit entries
    (`core.ra.transaction_service.TransactionService`)."""

    def note_nonce(self, nonce: bytes, at: datetime) -> bool: ...

    def seen(self, nonce: bytes, transaction_id: str) -> tuple[bool, CMPTransaction | None]: ...

    def attached(self, nonce: bytes, at: datetime,
                 transaction: Callable[[Issued | Rejected], CMPTransaction | None]
                 ) -> RequestRecord: ...

    def get(self, transaction_id: str) -> CMPTransaction | None: ...

    def open(self, transaction: CMPTransaction) -> bool: ...

    def move(self, transaction: CMPTransaction, expected: TransactionState,
             audit: AuditRecord | None = None) -> bool: ...

    def awaiting_confirmation(self, before: datetime, limit: int) -> list[CMPTransaction]: ...

    def unconfirmed_update_of(self, certificate: x509.Certificate) -> CMPTransaction | None: ...

    def record(self, at: datetime, record: AuditRecord) -> None: ...


class Certificates(Protocol):
    """Certificates issued here (`core.ca.directory.CertificateDirectory`); `NotFoundError`
    for one that was not."""

    def get_by_fingerprint(self, fingerprint: str) -> CertificateRecord: ...

    def get(self, authority: str, serial: int) -> CertificateRecord: ...


class Authorities(Protocol):
    """`core.ca.authority_service.AuthorityService`; `NotFoundError` for an unknown label."""

    def get(self, label: str) -> Authority: ...

    def list(self) -> list[Authority]: ...


class SecretRegistrations(Protocol):
    """`core.ra.registration_service.RegistrationService`."""

    def for_secret(self, name: str) -> Registration | None:
        """The secret registration a MAC reference names (its id, or a reusable
        credential's reference)."""
        ...


class Approvals(Protocol):
    def poll(self, request_id: str) -> Outcome: ...


class Enrollment(Protocol):
    """`core.ra.enrollment.EnrollmentService`."""

    @property
    def approval(self) -> Approvals: ...

    def select(self, allowed: Sequence[MethodName],
               request: EnrollmentRequest) -> MethodName | None: ...

    def enroll(self, request: EnrollmentRequest, method: MethodName,
               attached: AttachedWrites | None = None) -> Outcome: ...


class Revocation(Protocol):
    """`core.revocation.service.RevocationService`."""

    def revoke(self, authority: str, serial: int, reason: x509.ReasonFlags, actor: str,
               invalidity_date: datetime | None = None, operator: bool = False,
               holder: bool = False) -> CertificateRecord: ...

    def release(self, authority: str, serial: int, actor: str) -> CertificateRecord: ...


class Presented(Protocol):
    """`core.ra.presented.PresentedIdentities`: whether a protection certificate may speak;
    its record if it was issued here."""

    def check(self, chain: tuple[x509.Certificate, ...],
              allow_held: bool = False) -> CertificateRecord | None: ...


class Principals(Protocol):
    """`core.integration.principal_service.PrincipalService`: an RA's certificate as an API
    principal; `AuthenticationError` when none is bound to it."""

    def authenticate_certificate(self, certificate: x509.Certificate) -> Principal: ...


@dataclass(frozen=True)
class CMPCore:
    """Every port the CMP server uses."""

    transactions: Transactions
    certificates: Certificates
    authorities: Authorities
    registrations: SecretRegistrations
    enrollment: Enrollment
    revocation: Revocation
    presented: Presented
    principals: Principals
