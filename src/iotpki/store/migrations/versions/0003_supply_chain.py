"""Supply chain: domains, supplier trust, registrations, manifest deliveries, keys of
organizations, requests pending manual approval.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(253), nullable=False, unique=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "supplier_trust",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("supplier_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("anchor_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("organization_id", "supplier_id", "anchor_id", name="uq_supplier_trust"),
    )
    _create_registrations()
    _create_organization_keys()
    _create_pending_requests()
    _create_devices()
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender", sa.String(63), nullable=False),
        sa.Column("recipient", sa.String(63), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("sender", "recipient", "delivery_id", "direction", name="uq_deliveries"),
    )


def _create_organization_keys() -> None:
    op.create_table(
        "organization_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def _create_pending_requests() -> None:
    op.create_table(
        "pending_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("profile", sa.String(63), nullable=False),
        sa.Column("csr", sa.LargeBinary, nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("presented", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("decided_at", UTCDateTime),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("certificate", sa.String(64)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_pending_requests_status", "pending_requests", ["status", "created_at"])


def _create_devices() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("component_digest", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("organization_id", "name", name="uq_devices_name"),
    )
    op.create_table(
        "device_components",
        sa.Column("device_id", sa.String(36), sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("component", sa.String(64), primary_key=True),
    )
    op.create_index("ix_device_components_component", "device_components", ["component"])


def _create_registrations() -> None:
    op.create_table(
        "registrations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("profile", sa.String(63), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(1024)),
        sa.Column("sans", sa.Text),
        sa.Column("identity_fingerprint", sa.String(64)),
        sa.Column("identity_issuer", sa.String(1024)),
        sa.Column("identity_serial", sa.String(40)),
        sa.Column("identity_key", sa.String(64)),
        sa.Column("secret_hash", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("consumed_at", UTCDateTime),
        sa.Column("certificate", sa.String(64)),
        sa.Column("manifest", sa.String(128)),
        sa.Column("component_id", sa.String(255)),
        sa.Column("attributes", sa.Text, nullable=False),
    )
    op.create_index("ix_registrations_identity", "registrations", ["identity_key"])
    op.create_index("ix_registrations_org_status", "registrations", ["organization_id", "status"])


def downgrade() -> None:
    for table in ("device_components", "devices", "pending_requests", "organization_keys",
                  "deliveries", "registrations", "supplier_trust", "domains"):
        op.drop_table(table)
