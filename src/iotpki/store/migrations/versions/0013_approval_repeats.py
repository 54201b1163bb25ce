"""Manual approval over EST (RFC 7030 §3.2.3, §4.2.3): a pending request's `request_key`
(digest of its subject and public key) to recognize a client repeating it, and the 401
challenges given to requests without credentials (`core.ra.approval`).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.core.ra.pending import request_key
from iotpki.store.types import BigID, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_requests") as batch:
        batch.add_column(sa.Column("request_key", sa.String(64)))
    op.create_index("ix_pending_requests_key", "pending_requests",
                    ["authority_id", "profile", "request_key"])
    _fill_request_keys()
    op.create_table(
        "approval_challenges",
        sa.Column("id", BigID, primary_key=True),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("profile", sa.String(63), nullable=False),
        sa.Column("request_key", sa.String(64), nullable=False),
        sa.Column("challenged_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_approval_challenges_key", "approval_challenges",
                    ["authority_id", "profile", "request_key"])
    op.create_index("ix_approval_challenges_at", "approval_challenges", ["challenged_at"])


def _fill_request_keys() -> None:
    """Requests queued before this migration are recognized by subject and key too."""
    conn = op.get_bind()
    table = sa.table("pending_requests", sa.column("id", sa.String),
                     sa.column("csr", sa.LargeBinary), sa.column("request_key", sa.String))
    for row in conn.execute(sa.select(table.c.id, table.c.csr)).all():
        key = request_key(bytes(row.csr))
        if key is not None:
            conn.execute(table.update().where(table.c.id == row.id).values(request_key=key))


def downgrade() -> None:
    op.drop_index("ix_approval_challenges_at", "approval_challenges")
    op.drop_index("ix_approval_challenges_key", "approval_challenges")
    op.drop_table("approval_challenges")
    op.drop_index("ix_pending_requests_key", "pending_requests")
    with op.batch_alter_table("pending_requests") as batch:
        batch.drop_column("request_key")
