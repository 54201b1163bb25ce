"""Tables. The Alembic migrations in `migrations/versions` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
)

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
    UniqueConstraint("authority_id", "serial", name="uq_certificates_issuer_serial"),
    Index("ix_certificates_not_after", "not_after"),
    Index("ix_certificates_status", "authority_id", "status"),
    Index("ix_certificates_subject", "subject"),
    Index("ix_certificates_status_seq", "authority_id", "status_seq"),
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

ocsp_responders = Table(
    "ocsp_responders", metadata,
    Column("authority_id", Integer, ForeignKey("authorities.id"), primary_key=True,
           autoincrement=False),
    Column("key_ref", String(1024), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
