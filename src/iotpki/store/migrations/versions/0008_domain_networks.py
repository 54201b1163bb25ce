"""IP networks owned by operational domains: an IP SAN in another organization's network is
refused like a DNS name in its domain (`core.supply_chain.domain_claims`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domain_networks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("network", sa.String(64), nullable=False, unique=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("domain_networks")
