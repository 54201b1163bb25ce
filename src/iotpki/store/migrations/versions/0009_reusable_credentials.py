"""Reusable MAC credentials: a registration's operator-chosen reference (the client's CMP
senderKID), its allowed number of uses and the uses so far (`core.ra.registration`).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OPEN_REFERENCE = "status = 'open' AND reference IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("reference", sa.String(128)))
        batch.add_column(sa.Column("uses_allowed", sa.Integer, nullable=False,
                                   server_default="1"))
        batch.add_column(sa.Column("uses", sa.Integer, nullable=False, server_default="0"))
    # What was consumed before counts as its one use.
    op.execute("UPDATE registrations SET uses = 1 WHERE status = 'consumed'")
    op.create_index("ix_registrations_reference", "registrations", ["reference"])
    op.create_index("uq_registrations_open_reference", "registrations", ["reference"],
                    unique=True, sqlite_where=sa.text(_OPEN_REFERENCE),
                    postgresql_where=sa.text(_OPEN_REFERENCE))


def downgrade() -> None:
    op.drop_index("uq_registrations_open_reference", "registrations")
    op.drop_index("ix_registrations_reference", "registrations")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("uses")
        batch.drop_column("uses_allowed")
        batch.drop_column("reference")
