"""An index on the state of CMP transactions: the confirmation timeout (every second on
every node) and the one-open-kur check (every kur and rr, RFC 9483 §4.1.3) look for the
few transactions awaiting certConf among all finished ones, which are kept (issue 13).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cmp_transactions_state", "cmp_transactions", ["state", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_cmp_transactions_state", "cmp_transactions")
