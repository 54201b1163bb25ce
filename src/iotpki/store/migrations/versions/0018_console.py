"""The web console (issue 18): its sessions, shared by every worker and node, and the indexes
its fleet overview counts from (certificates by authority, status, notAfter and profile; by
authority and issue time; events by type and time).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("principal_id", sa.String(32), sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"])
    op.create_index("ix_certificates_fleet", "certificates",
                    ["authority_id", "status", "not_after", "profile"])
    op.create_index("ix_certificates_issued", "certificates", ["authority_id", "issued_at"])
    op.create_index("ix_events_type_at", "events", ["type", "at"])


def downgrade() -> None:
    op.drop_index("ix_events_type_at", "events")
    op.drop_index("ix_certificates_issued", "certificates")
    op.drop_index("ix_certificates_fleet", "certificates")
    op.drop_index("ix_console_sessions_expires", "console_sessions")
    op.drop_table("console_sessions")
