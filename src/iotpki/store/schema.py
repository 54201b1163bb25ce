"""Tables. The Alembic migrations in `migrations/versions` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from iotpki.store.types import BigID, UTCDateTime

metadata = MetaData()

organizations = Table(
    "organizations", metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(63), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

authorities = Table(
    "authorities", metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(63), nullable=False, unique=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("chain_pem", Text, nullable=False),
    Column("key_ref", String(1024)),
    Column("parent", String(63)),
    Column("created_at", UTCDateTime, nullable=False),
    # 0019: the CRL shard window in seconds (core.ca.crl_shard); NULL: one CRL scope.
    Column("crl_shard_seconds", BigInteger),
)

_ON_CRL = "status IN ('revoked', 'on-hold')"
certificates = Table(
    "certificates", metadata,
    Column("id", BigID, primary_key=True),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("serial", String(40), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("subject", String(1024), nullable=False),
    Column("sans", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("profile", String(63), nullable=False),
    Column("status", String(16), nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("revocation_reason", String(32)),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("der", LargeBinary, nullable=False),
    # 0002: revocation publication (see revocation_counters below).
    Column("status_seq", BigInteger),
    Column("released_at", UTCDateTime),
    Column("invalidity_date", UTCDateTime),
    Column("crl_shard", BigInteger),  # 0019: the CRL shard its CDP names; NULL: none
    # 0022: the public key's identity and strength (core.ca.key_facts) and the operational
    # domain it names: the posture checks' set-based queries.
    Column("key_id", String(64)),
    Column("key_algorithm", String(16)),
    Column("key_bits", Integer),
    Column("domain", String(253)),
    UniqueConstraint("authority_id", "serial", name="uq_certificates_issuer_serial"),
    Index("ix_certificates_not_after", "not_after"),
    Index("ix_certificates_status", "authority_id", "status"),
    # 0025: varchar_pattern_ops on PostgreSQL, so that it serves a subject prefix (the bulk
    # revocation's filter) as well as equality, whatever the database's collation.
    Index("ix_certificates_subject", "subject",
          postgresql_ops={"subject": "varchar_pattern_ops"}),
    Index("ix_certificates_status_seq", "authority_id", "status_seq"),
    # 0018: the console's fleet overview counts from these without reading the table (since
    # 0023 only the partial day or hour at an edge; whole ones from the tallies below).
    Index("ix_certificates_fleet", "authority_id", "status", "not_after", "profile"),
    Index("ix_certificates_issued", "authority_id", "issued_at"),
    # 0019: a shard's entries; revoked and held rows only (issuance never writes to it).
    Index("ix_certificates_crl_shard", "authority_id", "crl_shard",
          sqlite_where=text(_ON_CRL), postgresql_where=text(_ON_CRL)),
    Index("ix_certificates_key_id", "key_id"),
    Index("ix_certificates_key_strength", "authority_id", "key_algorithm", "key_bits"),
    Index("ix_certificates_domain", "domain"),
    # 0025: the bulk revocation's count by profile, and of the infrastructure profiles'
    # certificates it leaves alone, without reading the organization's whole fleet.
    Index("ix_certificates_profile", "profile", "authority_id", "status", "not_after"),
)

# 0023: the fleet overview's counters (store.certificate_tallies), kept in step by every write
# to `certificates` in the same transaction: certificates by authority, profile, status and
# the UTC day of their notAfter; issuances by authority and UTC hour (hours since the epoch).
certificate_tallies = Table(
    "certificate_tallies", metadata,
    Column("authority_id", Integer, ForeignKey("authorities.id"), primary_key=True),
    Column("profile", String(63), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("expires_on", Date, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

issuance_tallies = Table(
    "issuance_tallies", metadata,
    Column("authority_id", Integer, ForeignKey("authorities.id"), primary_key=True),
    Column("issued_hour", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigID, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row (id 1): the last entry's sequence number and hash. Appenders lock it, which
# serializes appends across processes and nodes, and it exposes a deleted tail.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigID, nullable=False),
    Column("hash", String(64), nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", BigID, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index("ix_events_undelivered", "delivered_at", "id"),
    Index("ix_events_type_at", "type", "at"),  # 0018: the console's rates
)

# -- supply chain (migration 0003) ------------------------------------------------------------

domains = Table(
    "domains", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# 0008: IP networks an operational domain owns (core.supply_chain.domain_claims).
domain_networks = Table(
    "domain_networks", metadata,
    Column("id", Integer, primary_key=True),
    Column("network", String(64), nullable=False, unique=True),
    Column("domain_id", Integer, ForeignKey("domains.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

supplier_trust = Table(
    "supplier_trust", metadata,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("supplier_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("anchor_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "supplier_id", "anchor_id", name="uq_supplier_trust"),
)

registrations = Table(
    "registrations", metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("profile", String(63), nullable=False),
    Column("method", String(32), nullable=False),
    Column("subject", String(1024)),
    Column("sans", Text),
    Column("identity_fingerprint", String(64)),
    Column("identity_issuer", String(1024)),
    Column("identity_serial", String(40)),
    Column("identity_key", String(64)),
    Column("secret_hash", String(255)),
    Column("secret_sealed", LargeBinary),  # 0004: AES-GCM, for CMP PasswordBasedMac
    Column("status", String(16), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("consumed_at", UTCDateTime),
    Column("certificate", String(64)),
    Column("manifest", String(128)),
    Column("component_id", String(255)),
    Column("attributes", Text, nullable=False),
    Column("reference", String(128)),  # 0009: a reusable credential's name (CMP senderKID)
    Column("uses_allowed", Integer, nullable=False, server_default="1"),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("failed_secrets", Integer, nullable=False, server_default="0"),  # 0011
    Column("locked_at", UTCDateTime),  # 0011
    Index("ix_registrations_identity", "identity_key"),
    Index("ix_registrations_reference", "reference"),
    # One open registration per reference: a client's senderKID names one credential.
    Index("uq_registrations_open_reference", "reference", unique=True,
          sqlite_where=text("status = 'open' AND reference IS NOT NULL"),
          postgresql_where=text("status = 'open' AND reference IS NOT NULL")),
    Index("ix_registrations_org_status", "organization_id", "status"),
    Index("ix_registrations_org_created", "organization_id", "created_at", "id"),  # 0021
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("sender", String(63), nullable=False),
    Column("recipient", String(63), nullable=False),
    Column("delivery_id", String(128), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("entries", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("sender", "recipient", "delivery_id", "direction", name="uq_deliveries"),
)

_OPEN_KEY = "status = 'pending' AND request_key IS NOT NULL"
pending_requests = Table(
    "pending_requests", metadata,
    Column("id", String(36), primary_key=True),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("profile", String(63), nullable=False),
    Column("csr", LargeBinary, nullable=False),
    Column("requester", String(255), nullable=False),
    Column("presented", String(64)),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(255)),
    Column("certificate", String(64)),
    Column("reason", Text),
    Column("request_key", String(64)),  # core.ra.pending.request_key (subject + public key)
    Index("ix_pending_requests_status", "status", "created_at"),
    Index("ix_pending_requests_key", "authority_id", "profile", "request_key"),
    # One undecided request per subject and key: concurrent repeats find the first one.
    Index("uq_pending_requests_open_key", "authority_id", "profile", "request_key",
          unique=True, sqlite_where=text(_OPEN_KEY), postgresql_where=text(_OPEN_KEY)),
)
# Requests without credentials answered with a 401 challenge on an endpoint that may queue
# them for manual approval (RFC 7030 §3.2.3, core.ra.approval): the same request again is
# then queued. Rows older than the approval limits' challenge memory are deleted.
approval_challenges = Table(
    "approval_challenges", metadata,
    Column("id", BigID, primary_key=True),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("profile", String(63), nullable=False),
    Column("request_key", String(64), nullable=False),
    Column("challenged_at", UTCDateTime, nullable=False),
    Index("ix_approval_challenges_key", "authority_id", "profile", "request_key"),
    Index("ix_approval_challenges_at", "challenged_at"),
)
# One row per authority: bumped in every revocation, hold and release transaction; the
# certificate changed gets the new value in `status_seq`. Nodes poll it to drop stale caches.
revocation_counters = Table(
    "revocation_counters", metadata,
    Column("authority_id", Integer, ForeignKey("authorities.id"), primary_key=True,
           autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)

# One row per authority, locked while a CRL is numbered and built (one publisher at a time).
crl_numbers = Table(
    "crl_numbers", metadata,
    Column("authority_id", Integer, ForeignKey("authorities.id"), primary_key=True,
           autoincrement=False),
    Column("last_number", BigInteger, nullable=False),
)

crls = Table(
    "crls", metadata,
    Column("id", BigID, primary_key=True),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # "full" or "delta"
    Column("number", BigInteger, nullable=False),
    Column("base_number", BigInteger),
    Column("revocation_seq", BigInteger, nullable=False),
    Column("this_update", UTCDateTime, nullable=False),
    Column("next_update", UTCDateTime, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("der", LargeBinary, nullable=False),
    UniqueConstraint("authority_id", "kind", "number", name="uq_crls_authority_kind_number"),
)

# 0019: the CRL shards of sharded authorities (core.revocation.crl_shards), registered by the
# first issuance into each: the shard's own CRL-number sequence (RFC 5280 §5.2.3, one per
# scope; the row is locked while a CRL is numbered), until when it holds unexpired
# certificates, and the node holding its build lease.
crl_shards = Table(
    "crl_shards", metadata,
    Column("authority_id", Integer, ForeignKey("authorities.id"), primary_key=True,
           autoincrement=False),
    Column("shard", BigInteger, primary_key=True, autoincrement=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_number", BigInteger, nullable=False),
    Column("lease_holder", String(255)),
    Column("lease_until", UTCDateTime),
)

shard_crls = Table(
    "shard_crls", metadata,
    Column("id", BigID, primary_key=True),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("shard", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),  # "full" or "delta"
    Column("number", BigInteger, nullable=False),
    Column("base_number", BigInteger),
    Column("revocation_seq", BigInteger, nullable=False),
    Column("this_update", UTCDateTime, nullable=False),
    Column("next_update", UTCDateTime, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("der", LargeBinary, nullable=False),
    UniqueConstraint("authority_id", "shard", "kind", "number",
                     name="uq_shard_crls_scope_kind_number"),
)

devices = Table(
    "devices", metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("component_digest", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # 0005: lifecycle state and current owner (NULL: the organization that built it).
    Column("state", String(16), nullable=False, server_default="active"),
    Column("owner_id", Integer, ForeignKey("organizations.id", name="fk_devices_owner_id")),
    Column("state_changed_at", UTCDateTime),
    UniqueConstraint("organization_id", "name", name="uq_devices_name"),
    Index("ix_devices_owner", "owner_id"),
    Index("ix_devices_owner_created", "owner_id", "created_at", "id"),  # 0020: keyset pages
)

# 0005: the identities issued for a device (device, operational, renewed certificates), linked
# in the issuing transaction: the device's history.
device_identities = Table(
    "device_identities", metadata,
    Column("device_id", String(36), ForeignKey("devices.id"), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("stage", String(32), nullable=False),
    Column("linked_at", UTCDateTime, nullable=False),
    Index("ix_device_identities_fingerprint", "fingerprint"),
)

# 0024: keys found on two or more devices of one owner (the posture check "the same public
# key on two devices"), recorded when an identity is linked or a device changes owner
# (store.shared_keys), so the check reads these few rows, not every certificate.
shared_keys = Table(
    "shared_keys", metadata,
    Column("owner_id", Integer, ForeignKey("organizations.id"), primary_key=True),
    Column("key_id", String(64), primary_key=True),
)

# One row per (device, component): finds the device a component went into.
device_components = Table(
    "device_components", metadata,
    Column("device_id", String(36), ForeignKey("devices.id"), primary_key=True),
    Column("component", String(64), primary_key=True),
    Index("ix_device_components_component", "component"),
)

# 0004: CMP server state (core.ra.transactions).
cmp_transactions = Table(
    "cmp_transactions", metadata,
    Column("transaction_id", String(128), primary_key=True),
    Column("state", String(24), nullable=False),
    Column("body_type", String(8), nullable=False),
    Column("our_nonce", LargeBinary, nullable=False),
    Column("cert_req_id", BigInteger, nullable=False),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("registration", String(36)),
    Column("signer", LargeBinary),
    Column("certificate", String(64)),
    Column("pending_request", String(36)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # 0017: the open transactions (awaiting certConf: the confirmation timeout, one open kur
    # per certificate) are found without reading every finished one.
    Index("ix_cmp_transactions_state", "state", "updated_at"),
)

cmp_nonces = Table(
    "cmp_nonces", metadata,
    Column("nonce", String(128), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
)

# Failed credential checks (MAC of a CMP request) per scope and key, within a sliding window,
# shared by every worker and node (`core.ra.failure_budget`, migration 0012).
failed_checks = Table(
    "failed_checks", metadata,
    Column("id", BigID, primary_key=True),
    Column("scope", String(16), nullable=False),  # what `key` is: reference, address
    Column("key", String(255), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index("ix_failed_checks_key", "scope", "key", "failed_at"),
    Index("ix_failed_checks_at", "failed_at"),
)

# -- lifecycle (migration 0005) ---------------------------------------------------------------

# The HMAC secret must be read to sign, so it is sealed (AES-GCM under the CA passphrase), not
# hashed; it is shown once, when the subscription is created.
webhook_subscriptions = Table(
    "webhook_subscriptions", metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("removed_at", UTCDateTime),
    Index("ix_webhook_subscriptions_org", "organization_id"),
)

# The per-subscription outbox: one row per (subscription, event), made by the dispatcher in
# the transaction that marks the event dispatched (events.delivered_at). Its id is the
# delivery id the receiver dedupes on; a row is claimed by moving next_attempt_at ahead.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", String(36), primary_key=True),
    Column("subscription_id", String(36), ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# One row per certificate whose "expiring" event was emitted: the expiry monitor's memory,
# so each certificate is announced once whatever the number of runs and nodes.
expiry_notices = Table(
    "expiry_notices", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("noticed_at", UTCDateTime, nullable=False),
)

# 0006: API principals (core.integration.principal) and idempotency keys (protocols.rest.idempotency).
principals = Table(
    "principals", metadata,
    Column("id", String(32), primary_key=True),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key_hash", String(64)),
    Column("certificate_fingerprint", String(64)),
    Column("certificate_subject", String(1024)),
    Column("certificate_authority", String(63)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("ix_principals_fingerprint", "certificate_fingerprint"),
    Index("ix_principals_subject", "certificate_subject"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("principal", String(32), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("principal", "key", name="uq_idempotency_keys"),
)

# 0007: server-generated private keys kept for recovery, sealed (core.ra.key_delivery).
key_archive = Table(
    "key_archive", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("authority_id", Integer, ForeignKey("authorities.id"), nullable=False),
    Column("serial_hex", String(64), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("archived_at", UTCDateTime, nullable=False),
)

# 0010: keys and certificates the service holds for itself (core.ca.service_certificates):
# OCSP responders, CMP protection, EST key delivery, manifest signers. The newest row of an
# (owner, purpose) is the current one; the owner is an authority or organization label.
service_certificates = Table(
    "service_certificates", metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("key_ref", String(1024), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_service_certificates_owner_purpose", "owner", "purpose", "id"),
)

# -- ACME (migration 0014, core.ra.acme) -------------------------------------------------------

# Each object is one JSON document (`data`) beside the columns it is looked up by.
acme_nonces = Table(
    "acme_nonces", metadata,
    Column("nonce", String(64), primary_key=True),
    Column("issued_at", UTCDateTime, nullable=False, index=True),
)

acme_accounts = Table(
    "acme_accounts", metadata,
    Column("id", String(36), primary_key=True),
    Column("thumbprint", String(64), nullable=False, unique=True),
    Column("organization", String(63)),
    Column("status", String(16), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

acme_orders = Table(
    "acme_orders", metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("acme_accounts.id"), nullable=False),
    Column("organization", String(63)),
    Column("status", String(16), nullable=False),
    Column("certificate", String(64), index=True),  # fingerprint, once issued
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_acme_orders_account", "account_id", "created_at"),
    Index("ix_acme_orders_organization", "organization", "created_at"),
)

acme_authorizations = Table(
    "acme_authorizations", metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("acme_accounts.id"), nullable=False),
    Column("identifier", String(300), nullable=False),  # "<type>:<value>"
    Column("status", String(16), nullable=False),
    Column("expires", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_acme_authorizations_lookup", "account_id", "identifier", "status"),
)

acme_eab_keys = Table(
    "acme_eab_keys", metadata,
    Column("key_id", String(64), primary_key=True),
    Column("organization", String(63), nullable=False),
    Column("label", String(63)),
    Column("sealed_key", LargeBinary, nullable=False),
    Column("account_id", String(36)),
    Column("created_at", UTCDateTime, nullable=False),
)

# 0016: renewal windows the operator pulled forward (core.lifecycle.renewal_info, RFC 9773).
renewal_pulls = Table(
    "renewal_pulls", metadata,
    Column("id", Integer, primary_key=True),
    Column("authority", String(63), nullable=False, index=True),
    Column("profile", String(63)),
    Column("at", UTCDateTime, nullable=False),
    Column("spread_seconds", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)

# 0018: web console sessions (core.integration.console_session): only the token's hash.
console_sessions = Table(
    "console_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("principal_id", String(32), ForeignKey("principals.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("via", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_console_sessions_expires", "expires_at"),
)
