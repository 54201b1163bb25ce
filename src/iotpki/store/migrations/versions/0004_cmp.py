"""CMP server: sealed registration secrets, transactions, seen nonces, protection
certificates (RFC 9483 §3.5, §4.1.1).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("secret_sealed", sa.LargeBinary))
    op.create_table(
        "cmp_transactions",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("body_type", sa.String(8), nullable=False),
        sa.Column("our_nonce", sa.LargeBinary, nullable=False),
        sa.Column("cert_req_id", sa.BigInteger, nullable=False),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("registration", sa.String(36)),
        sa.Column("signer", sa.LargeBinary),
        sa.Column("certificate", sa.String(64)),
        sa.Column("pending_request", sa.String(36)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "cmp_nonces",
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("seen_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "cmp_protection",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cmp_protection")
    op.drop_table("cmp_nonces")
    op.drop_table("cmp_transactions")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("secret_sealed")
