"""Renewal windows pulled forward by the operator (`core.lifecycle.renewal_info`, ACME
Renewal Information, RFC 9773).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "renewal_pulls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("authority", sa.String(63), nullable=False),
        sa.Column("profile", sa.String(63)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("spread_seconds", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_renewal_pulls_authority", "renewal_pulls", ["authority"])


def downgrade() -> None:
    op.drop_index("ix_renewal_pulls_authority", "renewal_pulls")
    op.drop_table("renewal_pulls")
