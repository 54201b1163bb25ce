"""One database transaction holding every repository (the core's `UnitOfWork`)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction

from iotpki.store.audit import SQLAuditRepository
from iotpki.store.authorities import SQLAuthorityRepository
from iotpki.store.certificates import SQLCertificateRepository
from iotpki.store.cmp import SQLCMPRepository
from iotpki.store.devices import SQLDeviceRepository
from iotpki.store.domains import (
    SQLDomainRepository,
    SQLOrganizationKeyRepository,
    SQLTrustRepository,
)
from iotpki.store.events import SQLEventOutbox
from iotpki.store.expiry import SQLExpiryRepository
from iotpki.store.ids import IdCache
from iotpki.store.organizations import SQLOrganizationRepository
from iotpki.store.pending import SQLPendingRequestRepository
from iotpki.store.principals import SQLIdempotencyRepository, SQLPrincipalRepository
from iotpki.store.registrations import SQLDeliveryRepository, SQLRegistrationRepository
from iotpki.store.revocation import (
    SQLCRLRepository,
    SQLOCSPResponderRepository,
    SQLRevocationIndex,
)
from iotpki.store.webhooks import SQLWebhookRepository


class SQLUnitOfWork:
    def __init__(self, engine: Engine, ids: IdCache) -> None:
        self._engine = engine
        self._ids = ids
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def __enter__(self) -> SQLUnitOfWork:
        self._conn = self._engine.connect()
        self._tx = self._conn.begin()
        self.organizations = SQLOrganizationRepository(self._conn)
        self.authorities = SQLAuthorityRepository(self._conn, self._ids)
        self.certificates = SQLCertificateRepository(self._conn, self._ids)
        self.audit = SQLAuditRepository(self._conn)
        self.events = SQLEventOutbox(self._conn)
        self.domains = SQLDomainRepository(self._conn, self._ids)
        self.trust = SQLTrustRepository(self._conn, self._ids)
        self.registrations = SQLRegistrationRepository(self._conn, self._ids)
        self.deliveries = SQLDeliveryRepository(self._conn)
        self.organization_keys = SQLOrganizationKeyRepository(self._conn, self._ids)
        self.pending = SQLPendingRequestRepository(self._conn, self._ids)
        self.devices = SQLDeviceRepository(self._conn, self._ids)
        self.revocation = SQLRevocationIndex(self._conn, self._ids)
        self.crls = SQLCRLRepository(self._conn, self._ids)
        self.ocsp_responders = SQLOCSPResponderRepository(self._conn, self._ids)
        self.cmp = SQLCMPRepository(self._conn, self._ids)
        self.webhooks = SQLWebhookRepository(self._conn, self._ids)
        self.expiry = SQLExpiryRepository(self._conn, self._ids)
        self.principals = SQLPrincipalRepository(self._conn, self._ids)
        self.idempotency = SQLIdempotencyRepository(self._conn)
        return self

    def commit(self) -> None:
        assert self._tx is not None, "commit() outside of 'with'"
        self._tx.commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None and self._tx is not None
        if self._tx.is_active:
            self._tx.rollback()  # not committed: nothing of this unit reaches the database
        self._conn.close()
