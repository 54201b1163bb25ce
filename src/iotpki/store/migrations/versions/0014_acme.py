"""ACME server state (RFC 8555): nonces, accounts, orders, authorizations, External
Account Binding keys (`core.ra.acme`).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acme_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("issued_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_acme_nonces_issued_at", "acme_nonces", ["issued_at"])
    op.create_table(
        "acme_accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("thumbprint", sa.String(64), nullable=False, unique=True),
        sa.Column("organization", sa.String(63)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "acme_orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(36), sa.ForeignKey("acme_accounts.id"),
                  nullable=False),
        sa.Column("organization", sa.String(63)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("certificate", sa.String(64)),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_acme_orders_certificate", "acme_orders", ["certificate"])
    op.create_index("ix_acme_orders_account", "acme_orders", ["account_id", "created_at"])
    op.create_index("ix_acme_orders_organization", "acme_orders",
                    ["organization", "created_at"])
    op.create_table(
        "acme_authorizations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(36), sa.ForeignKey("acme_accounts.id"),
                  nullable=False),
        sa.Column("identifier", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires", UTCDateTime, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_acme_authorizations_lookup", "acme_authorizations",
                    ["account_id", "identifier", "status"])
    op.create_table(
        "acme_eab_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("organization", sa.String(63), nullable=False),
        sa.Column("label", sa.String(63)),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("account_id", sa.String(36)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("acme_eab_keys")
    op.drop_index("ix_acme_authorizations_lookup", "acme_authorizations")
    op.drop_table("acme_authorizations")
    op.drop_index("ix_acme_orders_organization", "acme_orders")
    op.drop_index("ix_acme_orders_account", "acme_orders")
    op.drop_index("ix_acme_orders_certificate", "acme_orders")
    op.drop_table("acme_orders")
    op.drop_table("acme_accounts")
    op.drop_index("ix_acme_nonces_issued_at", "acme_nonces")
    op.drop_table("acme_nonces")
