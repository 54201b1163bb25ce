"""The console's device inventory pages through an owner's devices in (created_at, id) order,
each page starting after the last device shown (keyset pagination): an index in that order.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_devices_owner_created", "devices", ["owner_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_devices_owner_created", "devices")
