"""The REST API pages through an organization's registrations in (created_at, id) order,
each page starting after the last one returned (keyset pagination): an index in that order.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_registrations_org_created", "registrations",
                    ["organization_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_registrations_org_created", "registrations")
