"""Device lifecycle: device state and owner, device identity history, webhook subscriptions
and their delivery outbox, expiry notices.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("owner_id", sa.Integer, sa.ForeignKey(
            "organizations.id", name="fk_devices_owner_id")))
        batch.add_column(sa.Column("state_changed_at", UTCDateTime))
        batch.create_index("ix_devices_owner", ["owner_id"])
    op.execute("UPDATE devices SET owner_id = organization_id")  # the builder owns it first
    op.create_table(
        "device_identities",
        sa.Column("device_id", sa.String(36), sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("linked_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_device_identities_fingerprint", "device_identities", ["fingerprint"])
    _webhooks()
    op.create_table(
        "expiry_notices",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("noticed_at", UTCDateTime, nullable=False),
    )


def _webhooks() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"),
                  nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", sa.Text, nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("removed_at", UTCDateTime),
    )
    op.create_index("ix_webhook_subscriptions_org", "webhook_subscriptions", ["organization_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subscription_id", sa.String(36), sa.ForeignKey("webhook_subscriptions.id"),
                  nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("expiry_notices")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
    op.drop_table("device_identities")
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_owner")
        batch.drop_column("state_changed_at")
        batch.drop_column("owner_id")
        batch.drop_column("state")
