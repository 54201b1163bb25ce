"""Failed MAC checks of CMP requests, shared by every worker and node (issue 13 item 5):
the budget of `core.ra.failure_budget` was kept in each process's memory before.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import BigID, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "failed_checks",
        sa.Column("id", BigID, primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("failed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_failed_checks_key", "failed_checks", ["scope", "key", "failed_at"])
    op.create_index("ix_failed_checks_at", "failed_checks", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_failed_checks_at", "failed_checks")
    op.drop_index("ix_failed_checks_key", "failed_checks")
    op.drop_table("failed_checks")
