"""One database transaction holding every repository (the core's `UnitOfWork`)."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, NestedTransaction, RootTransaction

from iotpki.store.group_commit import GroupCommit
from iotpki.store.ids import IdCache

if TYPE_CHECKING:
    from iotpki.store.acme import SQLACMERepository
    from iotpki.store.audit import SQLAuditRepository
    from iotpki.store.authorities import SQLAuthorityRepository
    from iotpki.store.certificate_tallies import TallyLedger
    from iotpki.store.certificates import SQLCertificateRepository
    from iotpki.store.cmp import SQLCMPRepository
    from iotpki.store.console_sessions import SQLConsoleSessionRepository
    from iotpki.store.crl_shards import SQLCRLShardRepository
    from iotpki.store.device_inventory import SQLDeviceInventory
    from iotpki.store.devices import SQLDeviceRepository
    from iotpki.store.domains import SQLDomainRepository, SQLTrustRepository
    from iotpki.store.events import SQLEventOutbox
    from iotpki.store.expiry import SQLExpiryRepository
    from iotpki.store.failed_checks import SQLFailedCheckRepository
    from iotpki.store.fleet_statistics import SQLFleetStatistics
    from iotpki.store.key_archive import SQLKeyArchiveRepository
    from iotpki.store.organizations import SQLOrganizationRepository
    from iotpki.store.pending import SQLPendingRequestRepository
    from iotpki.store.posture import SQLPostureQueries
    from iotpki.store.principals import SQLIdempotencyRepository, SQLPrincipalRepository
    from iotpki.store.registrations import SQLDeliveryRepository, SQLRegistrationRepository
    from iotpki.store.renewal_pulls import SQLRenewalPullRepository
    from iotpki.store.revocation import SQLCRLRepository, SQLRevocationIndex
    from iotpki.store.service_certificates import SQLServiceCertificateRepository
    from iotpki.store.webhooks import SQLWebhookRepository

READ_ONLY = "iotpki_read_only"  # connection execution option: a unit that never writes


class SQLUnitOfWork:
    """One transaction. A `read_only` unit begins a deferred transaction on SQLite, which in
    WAL mode reads a snapshot without ever taking the write lock (writers never wait for
    it); a writing unit takes the lock up front (`database._tune_sqlite`)."""

    def __init__(self, engine: Engine, ids: IdCache, read_only: bool = False,
                 group: GroupCommit | None = None, snapshot: bool = False) -> None:
        self._engine = engine
        self._ids = ids
        self._read_only = read_only
        self._snapshot = snapshot  # every statement reads one snapshot (PostgreSQL)
        self._group = group  # a writer in a group commit (`store.group_commit`)
        self._conn: Connection | None = None
        self._tx: RootTransaction | NestedTransaction | None = None
        self._committed = False
        self._mark: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # group state at entry

    def __enter__(self) -> SQLUnitOfWork:
        if self._group is not None:
            self._conn = self._group.enter()
            self._mark = self._group.mark()
            if not self._group.holds_work():
                return self  # the group's transaction alone undoes it: no SAVEPOINT needed
            try:
                self._tx = self._conn.begin_nested()
            except BaseException as exc:
                self._group.abandon(exc)
                raise
            return self
        self._conn = self._engine.connect()
        if self._read_only:
            self._conn.execution_options(**{READ_ONLY: True})
        if self._snapshot and self._conn.dialect.name == "postgresql":
            # Read committed takes a snapshot per statement; repeatable read one for the
            # transaction (a read-only one never fails). SQLite's reads are one snapshot.
            self._conn.execution_options(isolation_level="REPEATABLE READ")
        self._tx = self._conn.begin()
        return self

    # Repositories are made on first use: a unit touches two or three of sixteen, and making
    # them all cost more than a statement on the issuance hot path. Their modules are
    # imported then too: a CLI read (`cert list`) imports the one repository it uses.

    @cached_property
    def organizations(self) -> SQLOrganizationRepository:
        from iotpki.store.organizations import SQLOrganizationRepository

        return SQLOrganizationRepository(self._connection)

    @cached_property
    def authorities(self) -> SQLAuthorityRepository:
        from iotpki.store.authorities import SQLAuthorityRepository

        return SQLAuthorityRepository(self._connection, self._ids)

    @cached_property
    def certificates(self) -> SQLCertificateRepository:
        from iotpki.store.certificates import SQLCertificateRepository

        return SQLCertificateRepository(self._connection, self._ids, self.tallies)

    @cached_property
    def tallies(self) -> TallyLedger:
        """The fleet counters' changes of this unit's writes, written as it commits."""
        from iotpki.store.certificate_tallies import TallyLedger

        return TallyLedger(self._group)

    @cached_property
    def audit(self) -> SQLAuditRepository:
        from iotpki.store.audit import SQLAuditRepository

        return SQLAuditRepository(self._connection, self._group)

    @cached_property
    def events(self) -> SQLEventOutbox:
        from iotpki.store.events import SQLEventOutbox

        return SQLEventOutbox(self._connection, self._group)

    @cached_property
    def domains(self) -> SQLDomainRepository:
        from iotpki.store.domains import SQLDomainRepository

        return SQLDomainRepository(self._connection, self._ids)

    @cached_property
    def trust(self) -> SQLTrustRepository:
        from iotpki.store.domains import SQLTrustRepository

        return SQLTrustRepository(self._connection, self._ids)

    @cached_property
    def registrations(self) -> SQLRegistrationRepository:
        from iotpki.store.registrations import SQLRegistrationRepository

        return SQLRegistrationRepository(self._connection, self._ids)

    @cached_property
    def deliveries(self) -> SQLDeliveryRepository:
        from iotpki.store.registrations import SQLDeliveryRepository

        return SQLDeliveryRepository(self._connection)

    @cached_property
    def service_certificates(self) -> SQLServiceCertificateRepository:
        from iotpki.store.service_certificates import SQLServiceCertificateRepository

        return SQLServiceCertificateRepository(self._connection)

    @cached_property
    def pending(self) -> SQLPendingRequestRepository:
        from iotpki.store.pending import SQLPendingRequestRepository

        return SQLPendingRequestRepository(self._connection, self._ids)

    @cached_property
    def devices(self) -> SQLDeviceRepository:
        from iotpki.store.devices import SQLDeviceRepository

        return SQLDeviceRepository(self._connection, self._ids)

    @cached_property
    def revocation(self) -> SQLRevocationIndex:
        from iotpki.store.revocation import SQLRevocationIndex

        return SQLRevocationIndex(self._connection, self._ids, self.tallies)

    @cached_property
    def crls(self) -> SQLCRLRepository:
        from iotpki.store.revocation import SQLCRLRepository

        return SQLCRLRepository(self._connection, self._ids)

    @cached_property
    def crl_shards(self) -> SQLCRLShardRepository:
        from iotpki.store.crl_shards import SQLCRLShardRepository

        return SQLCRLShardRepository(self._connection, self._ids)

    @cached_property
    def cmp(self) -> SQLCMPRepository:
        from iotpki.store.cmp import SQLCMPRepository

        return SQLCMPRepository(self._connection, self._ids)

    @cached_property
    def failed_checks(self) -> SQLFailedCheckRepository:
        from iotpki.store.failed_checks import SQLFailedCheckRepository

        return SQLFailedCheckRepository(self._connection)

    @cached_property
    def acme(self) -> SQLACMERepository:
        from iotpki.store.acme import SQLACMERepository

        return SQLACMERepository(self._connection)

    @cached_property
    def renewal_pulls(self) -> SQLRenewalPullRepository:
        from iotpki.store.renewal_pulls import SQLRenewalPullRepository

        return SQLRenewalPullRepository(self._connection)

    @cached_property
    def webhooks(self) -> SQLWebhookRepository:
        from iotpki.store.webhooks import SQLWebhookRepository

        return SQLWebhookRepository(self._connection, self._ids)

    @cached_property
    def expiry(self) -> SQLExpiryRepository:
        from iotpki.store.expiry import SQLExpiryRepository

        return SQLExpiryRepository(self._connection, self._ids)

    @cached_property
    def principals(self) -> SQLPrincipalRepository:
        from iotpki.store.principals import SQLPrincipalRepository

        return SQLPrincipalRepository(self._connection, self._ids)

    @cached_property
    def idempotency(self) -> SQLIdempotencyRepository:
        from iotpki.store.principals import SQLIdempotencyRepository

        return SQLIdempotencyRepository(self._connection)

    @cached_property
    def key_archive(self) -> SQLKeyArchiveRepository:
        from iotpki.store.key_archive import SQLKeyArchiveRepository

        return SQLKeyArchiveRepository(self._connection, self._ids)

    @cached_property
    def console_sessions(self) -> SQLConsoleSessionRepository:
        from iotpki.store.console_sessions import SQLConsoleSessionRepository

        return SQLConsoleSessionRepository(self._connection)

    @cached_property
    def device_inventory(self) -> SQLDeviceInventory:
        from iotpki.store.device_inventory import SQLDeviceInventory

        return SQLDeviceInventory(self._connection, self._ids)

    @cached_property
    def posture(self) -> SQLPostureQueries:
        from iotpki.store.posture import SQLPostureQueries

        return SQLPostureQueries(self._connection, self._ids)

    @cached_property
    def fleet(self) -> SQLFleetStatistics:
        from iotpki.store.fleet_statistics import SQLFleetStatistics

        return SQLFleetStatistics(self._connection, self._ids)

    @property
    def _connection(self) -> Connection:
        assert self._conn is not None, "repositories are used inside 'with'"
        return self._conn

    def commit(self) -> None:
        """Commit; in a group commit the unit's savepoint (if it has one) is released here
        and the unit waits for the group's COMMIT when its `with` ends."""
        assert self._conn is not None, "commit() outside of 'with'"
        if self._committed or (self._tx is not None and not self._tx.is_active):
            return
        if "tallies" in self.__dict__:  # this unit wrote certificates
            self.tallies.settle(self._connection)
        if self._tx is not None:  # None: the first unit of a group, without a SAVEPOINT
            self._tx.commit()
        self._committed = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        if self._group is None:
            assert self._tx is not None
            if self._tx.is_active:
                self._tx.rollback()  # not committed: nothing of this unit reaches the database
            self._conn.close()
            return
        try:
            if self._tx is None:
                if not self._committed:
                    self._group.discard()  # its transaction holds this unit's work alone
            elif self._tx.is_active:
                self._tx.rollback()  # back to the unit's savepoint: the group's work stays
                self._group.restore(self._mark)
        except BaseException as error:
            self._group.abandon(error)
            raise
        generation = self._group.leave(self._committed)
        if generation is not None:
            self._group.wait(generation)  # durable before the caller answers
