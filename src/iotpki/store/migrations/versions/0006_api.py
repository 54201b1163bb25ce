"""REST API: principals (API keys, client-certificate bindings) and idempotency keys.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"),
                  nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64)),
        sa.Column("certificate_fingerprint", sa.String(64)),
        sa.Column("certificate_subject", sa.String(1024)),
        sa.Column("certificate_authority", sa.String(63)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("revoked_at", UTCDateTime),
    )
    op.create_index("ix_principals_fingerprint", "principals", ["certificate_fingerprint"])
    op.create_index("ix_principals_subject", "principals", ["certificate_subject"])
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("principal", "key", name="uq_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_principals_subject", "principals")
    op.drop_index("ix_principals_fingerprint", "principals")
    op.drop_table("principals")
