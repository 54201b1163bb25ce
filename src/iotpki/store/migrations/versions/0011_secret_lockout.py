"""Secret guessing (issue 15 item 10): failed secret checks per registration, and when the
registration was locked after too many (`core.ra.guessing`).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("failed_secrets", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("locked_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("locked_at")
        batch.drop_column("failed_secrets")
