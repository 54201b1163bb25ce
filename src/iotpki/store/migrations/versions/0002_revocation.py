"""Revocation publication: change sequence, CRLs, OCSP responders (RFC 5280 §5, RFC 6960).

- certificates gain `status_seq` (the per-authority revocation counter value of their last
  status change, for delta CRLs and cache invalidation), `released_at` (when a hold was
  released) and `invalidity_date` (RFC 5280 §5.3.2, when known).
- revocation_counters: one row per authority, bumped in every revocation transaction.
- crls: every published full and delta CRL.
- crl_numbers: one row per authority, locked while a CRL is numbered and built.
- ocsp_responders: the current delegated responder certificate of each authority.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import BigID, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("status_seq", sa.BigInteger))
        batch.add_column(sa.Column("released_at", UTCDateTime))
        batch.add_column(sa.Column("invalidity_date", UTCDateTime))
    op.create_index("ix_certificates_status_seq", "certificates", ["authority_id", "status_seq"])
    op.create_table(
        "revocation_counters",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "crl_numbers",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("last_number", sa.BigInteger, nullable=False),
    )
    _create_crls()
    op.create_table(
        "ocsp_responders",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("not_after", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def _create_crls() -> None:
    op.create_table(
        "crls",
        sa.Column("id", BigID, primary_key=True),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("number", sa.BigInteger, nullable=False),
        sa.Column("base_number", sa.BigInteger),
        sa.Column("revocation_seq", sa.BigInteger, nullable=False),
        sa.Column("this_update", UTCDateTime, nullable=False),
        sa.Column("next_update", UTCDateTime, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("authority_id", "kind", "number", name="uq_crls_authority_kind_number"),
    )


def downgrade() -> None:
    for table in ("ocsp_responders", "crls", "crl_numbers", "revocation_counters"):
        op.drop_table(table)
    op.drop_index("ix_certificates_status_seq", "certificates")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("invalidity_date")
        batch.drop_column("released_at")
        batch.drop_column("status_seq")
