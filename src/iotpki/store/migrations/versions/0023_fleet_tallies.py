"""The fleet overview's counters (issue 18): certificates by authority, profile, status and
the UTC day of their notAfter, issuances by authority and UTC hour (hours since the epoch),
kept in step by every write to `certificates` (store.certificate_tallies). Filled here from
the stored certificates, one INSERT … SELECT … GROUP BY each.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate_tallies",
        sa.Column("authority_id", sa.Integer(), sa.ForeignKey("authorities.id"),
                  primary_key=True),
        sa.Column("profile", sa.String(63), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("expires_on", sa.Date(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "issuance_tallies",
        sa.Column("authority_id", sa.Integer(), sa.ForeignKey("authorities.id"),
                  primary_key=True),
        sa.Column("issued_hour", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    _fill()


def _fill() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":  # a node still writing waits until this commits
        conn.execute(sa.text("LOCK TABLE certificates IN SHARE MODE"))
    c = sa.table("certificates", sa.column("authority_id", sa.Integer),
                 sa.column("profile", sa.String), sa.column("status", sa.String),
                 sa.column("not_after", sa.DateTime), sa.column("issued_at", sa.DateTime)).c
    # Literals, not bound parameters: PostgreSQL matches a GROUP BY expression to the
    # selected one only if they are written alike.
    day: Any
    hour: Any
    if conn.dialect.name == "sqlite":  # naive UTC text
        day = sa.func.date(c.not_after)
        hour = sa.literal_column("CAST(strftime('%s', certificates.issued_at) AS INTEGER) / 3600")
    else:
        day = sa.literal_column("CAST(timezone('UTC', certificates.not_after) AS DATE)")
        hour = sa.literal_column(
            "CAST(floor(extract(epoch FROM certificates.issued_at) / 3600) AS BIGINT)")
    certificate_tallies = sa.table("certificate_tallies", *(sa.column(name) for name in (
        "authority_id", "profile", "status", "expires_on", "count")))
    issuance_tallies = sa.table("issuance_tallies", *(sa.column(name) for name in (
        "authority_id", "issued_hour", "count")))
    conn.execute(certificate_tallies.insert().from_select(
        ["authority_id", "profile", "status", "expires_on", "count"],
        sa.select(c.authority_id, c.profile, c.status, day, sa.func.count())
        .group_by(c.authority_id, c.profile, c.status, day)))
    conn.execute(issuance_tallies.insert().from_select(
        ["authority_id", "issued_hour", "count"],
        sa.select(c.authority_id, hour, sa.func.count()).group_by(c.authority_id, hour)))


def downgrade() -> None:
    op.drop_table("issuance_tallies")
    op.drop_table("certificate_tallies")
