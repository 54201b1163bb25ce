"""Key archive: server-generated private keys, sealed, for profiles with
`key_archival: true` (RFC 9483 §4.1.6, RFC 7030 §4.4.2; `core.ra.key_delivery`).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_archive",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("serial_hex", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("archived_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("key_archive")
