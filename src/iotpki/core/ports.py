"""What the core needs from the outside, as Protocols. The store and key backends implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Protocol

from cryptography import x509

from iotpki.core.audit.log import AuditEntry, AuditHead
from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.events import Event, StoredEvent
from iotpki.core.integration.idempotency import StoredResponse
from iotpki.core.integration.principal import Principal
from iotpki.core.integration.webhook import DeliveryStatus, WebhookDelivery, WebhookSubscription
from iotpki.core.lifecycle.device import Device, DeviceIdentity, DeviceState
from iotpki.core.ra.pending import PendingRequest
from iotpki.core.ra.registration import Registration
from iotpki.core.ra.transactions import CMPTransaction, ProtectionRecord, TransactionState
from iotpki.core.revocation.status import (
    CRLInfo,
    CRLKind,
    PublishedCRL,
    ResponderRecord,
    StatusEntry,
)
from iotpki.core.supply_chain.domain import Domain, DomainNetwork
from iotpki.core.supply_chain.organization import Organization
from iotpki.wire.crl import RevokedEntry


class KeyRing(Protocol):
    """Key backends behind one face. A key reference names its backend (`software:…`, `pkcs11:…`).

    `load` returns an object with the `cryptography` private-key interface, so
    `CertificateBuilder.sign()` works whatever holds the key. A *location* says where a new
    key goes: None (the default backend), a backend name, or a backend URI (a token).
    """

    def check(self, key_type: str, location: str | None = None) -> None:
        """Raise if a `key_type` key cannot be made at `location`; called before any write."""
        ...

    def generate(self, key_type: str, label: str, location: str | None = None) -> str: ...

    def import_private_key(self, key: Any, label: str, location: str | None = None) -> str: ...

    def load(self, key_ref: str) -> Any: ...

    def discard(self, key_ref: str) -> None:
        """Remove a key whose authority could not be created (no half-created authority)."""
        ...

    def location_of(self, key_ref: str) -> str:
        """Where a key is held, as a location for keys that belong with it."""
        ...


class OrganizationRepository(Protocol):
    def add(self, organization: Organization) -> None: ...

    def get(self, label: str) -> Organization | None: ...

    def list(self) -> list[Organization]: ...


class AuthorityRepository(Protocol):
    def add(self, authority: Authority) -> None: ...

    def get(self, label: str) -> Authority | None: ...

    def list(self) -> list[Authority]: ...


@dataclass(frozen=True)
class CertificateQuery:
    authority: str | None = None
    status: CertificateStatus | None = None
    subject_contains: str | None = None
    expires_before: datetime | None = None
    profile: str | None = None
    organization: str | None = None  # certificates of this organization's authorities
    limit: int | None = 100  # None: all
    offset: int = 0


class RevocationCandidate(NamedTuple):
    """The few facts a bulk revocation needs about one certificate (not its DER)."""

    authority: str
    serial: str  # hex, as stored
    subject: str
    status: CertificateStatus


class CertificateRepository(Protocol):
    def add(self, record: CertificateRecord) -> None:
        """Insert; raise `ConflictError` if (authority, serial) is already taken."""
        ...

    def add_many(self, records: list[CertificateRecord]) -> None:
        """Insert several in one statement; `ConflictError` if any serial is taken."""
        ...

    def get(self, authority: str, serial: int) -> CertificateRecord | None: ...

    def get_by_fingerprint(self, fingerprint: str) -> CertificateRecord | None: ...

    def find(self, query: CertificateQuery) -> list[CertificateRecord]: ...

    def set_status(
        self, authority: str, serial: int, status: CertificateStatus,
        revoked_at: datetime | None, reason: str | None,
    ) -> None: ...

    def revocation_candidates(self, query: CertificateQuery) -> list[RevocationCandidate]:
        """Every certificate matching the query (limit and offset ignored), cheaply."""
        ...


class AuditRepository(Protocol):
    def head_for_update(self) -> AuditHead:
        """The head of the log, locked until the transaction ends (appends are serialized)."""
        ...

    def append(self, entry: AuditEntry) -> None: ...

    def append_many(self, entries: list[AuditEntry]) -> None:
        """Entries already chained to the current head, in order."""
        ...

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[AuditEntry]: ...

    def head(self) -> AuditHead: ...


class DomainRepository(Protocol):
    def add(self, domain: Domain) -> None:
        """Raise `ConflictError` if another organization owns the name already."""
        ...

    def owner(self, name: str) -> str | None: ...

    def owners(self, names: Sequence[str]) -> dict[str, str]:
        """Owner organization of each of `names` that is owned (one query)."""
        ...

    def add_network(self, network: DomainNetwork) -> None:
        """Raise `ConflictError` if that exact network is owned already."""
        ...

    def networks(self) -> list[DomainNetwork]:
        """Every network a domain owns (few: checked in memory for each IP SAN)."""
        ...

    def list(self, organization: str | None = None) -> list[Domain]: ...


class TrustRepository(Protocol):
    """Which suppliers an organization trusts, and with which anchors (authority labels)."""

    def add(self, organization: str, supplier: str, anchor: str, at: datetime) -> None: ...

    def anchors(self, organization: str, supplier: str | None = None) -> list[Authority]: ...

    def suppliers(self, organization: str) -> list[tuple[str, str]]:
        """(supplier, anchor) pairs."""
        ...


@dataclass(frozen=True)
class IdentityKey:
    """The two keys a presented certificate is looked up under (see `registration.identity_key`)."""

    fingerprint: str
    issuer_serial: str


class BulkIdentity(NamedTuple):
    """One manifest entry as a registration: id, lookup key and the identity's facts.
    (A tuple, not a dataclass: a manifest may carry a million of them.)"""

    id: str
    key: str
    fingerprint: str
    issuer: str
    serial: str
    component_id: str
    attributes_json: str


class RegistrationRepository(Protocol):
    def add_many(self, registrations: list[Registration]) -> None: ...

    def add_bulk(self, template: Registration, identities: list[BulkIdentity]) -> None:
        """Many previous-stage registrations that share everything but their identity."""
        ...

    def get(self, registration_id: str) -> Registration | None: ...

    def for_identity(self, identity: IdentityKey) -> list[Registration]:
        """Every registration naming this identity, newest first."""
        ...

    def consume(self, registration_id: str, at: datetime, certificate: str) -> bool:
        """Mark used if still open; False if another request consumed it first."""
        ...

    def cancel(self, registration_id: str) -> bool: ...

    def find(self, organization: str | None, status: str | None, limit: int,
             offset: int) -> list[Registration]: ...


class DeliveryRepository(Protocol):
    """Manifests seen, so that a delivery is imported once (replay protection)."""

    def add(self, sender: str, recipient: str, delivery_id: str, direction: str,
            entries: int, at: datetime) -> bool:
        """False if this delivery was recorded before."""
        ...


class OrganizationKeyRepository(Protocol):
    """Keys an organization uses itself (e.g. "manifest-signer"): key ref and certificate."""

    def add(self, organization: str, purpose: str, key_ref: str,
            certificate: x509.Certificate, at: datetime) -> None: ...

    def current(self, organization: str, purpose: str) -> tuple[str, x509.Certificate] | None:
        """The newest (key ref, certificate) for this purpose."""
        ...


class PendingRequestRepository(Protocol):
    """Requests waiting on an operator (manual approval)."""

    def add(self, pending: PendingRequest) -> None: ...

    def get(self, request_id: str) -> PendingRequest | None: ...

    def decide(self, request_id: str, status: str, at: datetime, by: str,
               certificate: str | None, reason: str | None) -> bool:
        """Record the decision if still pending; False if decided already."""
        ...

    def find(self, status: str | None, limit: int, offset: int) -> list[PendingRequest]: ...

    def for_csr(self, csr: bytes) -> PendingRequest | None:
        """The newest request with exactly this CSR (a client repeating it, RFC 7030 §4.2.3)."""
        ...


class DeviceRepository(Protocol):
    def add(self, device: Device) -> None: ...

    def get(self, device_id: str) -> Device | None: ...

    def containing(self, organization: str, component: str) -> Device | None:
        """The organization's device built with this component, if any."""
        ...

    def with_identity(self, fingerprint: str) -> Device | None:
        """The device an identity was issued for, or that a component went into."""
        ...

    def named(self, organization: str, name: str) -> Device | None: ...

    def link(self, device_id: str, fingerprint: str, stage: str, at: datetime) -> None:
        """Add an identity to the device's history (in the transaction that issued it)."""
        ...

    def move(self, device_id: str, expected: DeviceState, state: DeviceState, owner: str,
             at: datetime) -> bool:
        """Set state and owner if the device is still in state `expected`; False otherwise
        (another event moved it first)."""
        ...

    def history(self, device_id: str) -> list[DeviceIdentity]:
        """Component identities first, then the linked identities in the order issued."""
        ...

    def find(self, owner: str | None, state: DeviceState | None, limit: int,
             offset: int) -> list[Device]: ...


class PrincipalRepository(Protocol):
    def add(self, principal: Principal) -> None: ...

    def get(self, principal_id: str) -> Principal | None: ...

    def for_certificate(self, fingerprint: str, subject: str) -> list[Principal]:
        """Principals bound to this certificate's fingerprint or to its subject."""
        ...

    def list(self, organization: str | None) -> list[Principal]: ...

    def revoke(self, principal_id: str, at: datetime) -> None: ...


class IdempotencyRepository(Protocol):
    def get(self, principal: str, key: str) -> StoredResponse | None: ...

    def add(self, response: StoredResponse) -> bool:
        """False (and nothing written) if (principal, key) is stored already."""
        ...


class EventOutbox(Protocol):
    def add(self, event: Event) -> None: ...

    def add_many(self, events: list[Event]) -> None: ...

    def undispatched(self, limit: int) -> list[StoredEvent]:
        """The oldest events not yet fanned out to webhook deliveries, locked until the
        transaction ends (other nodes skip them)."""
        ...

    def get(self, event_id: int) -> StoredEvent | None: ...

    def mark_dispatched(self, event_ids: list[int], at: datetime) -> None: ...


class WebhookRepository(Protocol):
    def add(self, subscription: WebhookSubscription, secret_sealed: bytes) -> None: ...

    def get(self, subscription_id: str) -> WebhookSubscription | None: ...

    def sealed_secret(self, subscription_id: str) -> bytes: ...

    def active(self) -> list[WebhookSubscription]: ...

    def subscriptions(self, organization: str | None) -> list[WebhookSubscription]:
        """Subscriptions not removed, oldest first."""
        ...

    def remove(self, subscription_id: str, at: datetime) -> bool: ...

    def add_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        """Raise `ConflictError` if one (subscription, event) exists already."""
        ...

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[WebhookDelivery]:
        """Pending deliveries due at `now`, each moved to `lease_until` (compare-and-set, so
        that one node only gets each); the caller commits at once, then sends."""
        ...

    def record_attempt(self, delivery: WebhookDelivery) -> None:
        """Store status, attempts, next attempt, last error, delivered time."""
        ...

    def deliveries(self, organization: str | None, subscription: str | None,
                   status: DeliveryStatus | None, limit: int, offset: int) -> list[WebhookDelivery]:
        """Newest first."""
        ...


class ExpiryRepository(Protocol):
    def candidates(self, profile: str, expires_before: datetime, now: datetime,
                   limit: int) -> list[CertificateRecord]:
        """Good certificates of the profile, unexpired, expiring before `expires_before`,
        not yet announced; soonest first."""
        ...

    def note(self, fingerprint: str, at: datetime) -> bool:
        """Remember the announcement; False if it was made before (by another node)."""
        ...


class RevocationIndex(Protocol):
    """Revocation facts by (authority, serial), and a per-authority change counter."""

    def record_change(
        self, authority: str, serial: int, at: datetime, *, released_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> int:
        """Bump the authority's counter in this transaction and stamp the certificate with it."""
        ...

    def record_bulk_change(
        self, authority: str, serials: list[str], status: CertificateStatus, at: datetime,
        reason: str, invalidity_date: datetime | None,
    ) -> int:
        """Revoke (or hold) many certificates of one authority: one counter bump, their new
        status stamped with it; a held certificate keeps its original revocation time."""
        ...

    def counter(self, authority: str) -> int: ...

    def counters(self) -> Mapping[str, int]:
        """Every authority's counter: one cheap query that nodes poll to expire caches."""
        ...

    def lookup(self, authority: str, serial: int) -> StatusEntry | None:
        """None if the authority never issued this serial."""
        ...

    def revoked(self, authority: str) -> Iterator[StatusEntry]:
        """Every revoked or held certificate of the authority."""
        ...

    def crl_entries(self, authority: str) -> Iterator[RevokedEntry]:
        """The same as CRL entries, streamed: the fast path of a full CRL (RFC 5280 §5.1)."""
        ...

    def changed_since(self, authority: str, seq: int) -> list[StatusEntry]:
        """Certificates whose status changed after counter value `seq` (delta CRL, caches)."""
        ...


class CRLRepository(Protocol):
    def lock_number(self, authority: str) -> int:
        """The last CRL number used, locked until the transaction ends (one publisher)."""
        ...

    def set_number(self, authority: str, number: int) -> None: ...

    def add(self, crl: PublishedCRL) -> None: ...

    def latest(self, authority: str, kind: CRLKind) -> PublishedCRL | None: ...

    def latest_info(self, authority: str, kind: CRLKind) -> CRLInfo | None:
        """Cheap: the newest CRL of that kind, without its DER."""
        ...


class OCSPResponderRepository(Protocol):
    def get(self, authority: str) -> ResponderRecord | None: ...

    def put(self, record: ResponderRecord) -> None:
        """Insert or replace the authority's current responder."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Nothing is written unless `commit()` is called inside the `with`."""

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
    def organization_keys(self) -> OrganizationKeyRepository: ...

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
    def ocsp_responders(self) -> OCSPResponderRepository: ...

    @property
    def cmp(self) -> CMPRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def expiry(self) -> ExpiryRepository: ...

    @property
    def principals(self) -> PrincipalRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]




@dataclass(frozen=True)
class ArchivedKey:
    """A server-generated private key kept for recovery (profile `key_archival: true`):
    the PKCS #8 DER sealed by the `SecretSealer`, never stored in the clear."""

    authority: str
    serial_hex: str
    fingerprint: str
    sealed: bytes
    archived_at: datetime


class KeyArchiveRepository(Protocol):
    def add(self, key: ArchivedKey) -> None: ...

    def get(self, fingerprint: str) -> ArchivedKey | None: ...


class SecretSealer(Protocol):
    """Authenticated encryption of registration secrets at rest (a key backend provides it);
    the CMP server unseals a one-time secret to recompute a PasswordBasedMac."""

    def seal(self, secret: bytes) -> bytes: ...

    def unseal(self, sealed: bytes) -> bytes:
        """Raise `PKIError` if the sealed value was altered or sealed under another key."""
        ...


class CMPRepository(Protocol):
    """CMP transactions, seen nonces and protection certificates (`core.ra.transactions`)."""

    def note_nonce(self, nonce: bytes, at: datetime) -> bool:
        """Record a client's senderNonce; False if it was seen before (a replay)."""
        ...

    def add_transaction(self, transaction: CMPTransaction) -> bool:
        """False if a transaction with this id exists already."""
        ...

    def get_transaction(self, transaction_id: str) -> CMPTransaction | None: ...

    def update_transaction(self, transaction: CMPTransaction, expected: TransactionState) -> bool:
        """Replace if still in state `expected`; False if another message moved it first."""
        ...

    def protection(self, authority: str) -> ProtectionRecord | None: ...

    def awaiting_confirmation(self, before: datetime, limit: int) -> list[CMPTransaction]:
        """Transactions still awaiting certConf whose last answer was before `before`."""
        ...

    def put_protection(self, record: ProtectionRecord) -> None: ...
