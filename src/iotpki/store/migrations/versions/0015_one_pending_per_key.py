"""One undecided manual-approval request per authority, profile, subject and public key
(RFC 7030 §4.2.3: a repeated request is never queued twice, even when two copies arrive at
once). Requests queued twice before keep their key on the oldest only.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_OPEN_KEY = "status = 'pending' AND request_key IS NOT NULL"


def upgrade() -> None:
    conn = op.get_bind()
    table = sa.table("pending_requests", sa.column("id", sa.String),
                     sa.column("authority_id", sa.Integer), sa.column("profile", sa.String),
                     sa.column("request_key", sa.String), sa.column("status", sa.String),
                     sa.column("created_at", sa.DateTime))
    seen: set[tuple[int, str, str]] = set()
    rows = conn.execute(sa.select(table.c.id, table.c.authority_id, table.c.profile,
                                  table.c.request_key)
                        .where(sa.text(_OPEN_KEY)).order_by(table.c.created_at)).all()
    for row in rows:
        key = (row.authority_id, row.profile, row.request_key)
        if key in seen:
            conn.execute(table.update().where(table.c.id == row.id).values(request_key=None))
        seen.add(key)
    op.create_index("uq_pending_requests_open_key", "pending_requests",
                    ["authority_id", "profile", "request_key"], unique=True,
                    sqlite_where=sa.text(_OPEN_KEY), postgresql_where=sa.text(_OPEN_KEY))


def downgrade() -> None:
    op.drop_index("uq_pending_requests_open_key", "pending_requests")
