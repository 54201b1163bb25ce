"""The transaction the core works in: one `UnitOfWork` holding every repository.

Each repository is declared beside the concept it stores (`core/<subdomain>/ports.py`), the
key ports in `core/keyring.py` and the event outbox in `core/events.py`. A service that
needs only a few repositories declares a narrower unit of work of its own (for example
`core/audit/trail.AuditUnitOfWork`); the store's unit of work satisfies them all.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

# Only for the annotations below: a module that needs `Transaction` alone (the certificate
# directory of `iotpki cert list`) does not import every subdomain's ports with it.
if TYPE_CHECKING:
    from iotpki.core.audit.ports import AuditRepository
    from iotpki.core.ca.ports import (
        AuthorityRepository,
        CertificateRepository,
        KeyArchiveRepository,
        ServiceCertificateRepository,
    )
    from iotpki.core.events import EventOutbox
    from iotpki.core.integration.ports import PrincipalRepository, WebhookRepository
    from iotpki.core.lifecycle.ports import (
        DeviceRepository,
        ExpiryRepository,
        RenewalPullRepository,
    )
    from iotpki.core.ra.ports import (
        ACMERepository,
        CMPRepository,
        FailedCheckRepository,
        PendingRequestRepository,
        RegistrationRepository,
    )
    from iotpki.core.revocation.ports import (
        CRLRepository,
        CRLShardRepository,
        RevocationIndex,
    )
    from iotpki.core.supply_chain.ports import (
        DeliveryRepository,
        DomainRepository,
        OrganizationRepository,
        TrustRepository,
    )


class Transaction(Protocol):
    """One transaction. Nothing is written unless `commit()` is called inside the `with`.
    A narrow unit of work is a `Transaction` plus the repositories its service uses."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class UnitOfWork(Transaction, Protocol):
    """One transaction holding every repository."""

    @property
    def organizations(self) -> OrganizationRepository: ...

    @property
    def authorities(self) -> AuthorityRepository: ...

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def events(self) -> EventOutbox: ...

    @property
    def domains(self) -> DomainRepository: ...

    @property
    def trust(self) -> TrustRepository: ...

    @property
    def registrations(self) -> RegistrationRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def service_certificates(self) -> ServiceCertificateRepository: ...

    @property
    def pending(self) -> PendingRequestRepository: ...

    @property
    def devices(self) -> DeviceRepository: ...

    @property
    def revocation(self) -> RevocationIndex: ...

    @property
    def key_archive(self) -> KeyArchiveRepository: ...

    @property
    def crls(self) -> CRLRepository: ...

    @property
    def crl_shards(self) -> CRLShardRepository: ...

    @property
    def cmp(self) -> CMPRepository: ...

    @property
    def failed_checks(self) -> FailedCheckRepository: ...

    @property
    def acme(self) -> ACMERepository: ...

    @property
    def renewal_pulls(self) -> RenewalPullRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def expiry(self) -> ExpiryRepository: ...

    @property
    def principals(self) -> PrincipalRepository: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
