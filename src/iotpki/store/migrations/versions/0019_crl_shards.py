"""Sharded CRLs (RFC 5280 §5.2.5 issuingDistributionPoint, docs/crl.md): an authority's
shard window, each certificate's shard (chosen at issuance, named in its CDP), the shards'
CRL numbers and build leases, and the shards' CRLs (issue 20).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import BigID, UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ON_CRL = "status IN ('revoked', 'on-hold')"


def upgrade() -> None:
    with op.batch_alter_table("authorities") as batch:
        batch.add_column(sa.Column("crl_shard_seconds", sa.BigInteger))
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("crl_shard", sa.BigInteger))
    # Only revoked and held certificates: a shard's full CRL reads its entries from this
    # small index, and issuing a (good) certificate does not write to it.
    op.create_index("ix_certificates_crl_shard", "certificates",
                    ["authority_id", "crl_shard"], sqlite_where=sa.text(_ON_CRL),
                    postgresql_where=sa.text(_ON_CRL))
    op.create_table(
        "crl_shards",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("shard", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("last_number", sa.BigInteger, nullable=False),
        sa.Column("lease_holder", sa.String(255)),
        sa.Column("lease_until", UTCDateTime),
    )
    op.create_table(
        "shard_crls",
        sa.Column("id", BigID, primary_key=True),
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), nullable=False),
        sa.Column("shard", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("number", sa.BigInteger, nullable=False),
        sa.Column("base_number", sa.BigInteger),
        sa.Column("revocation_seq", sa.BigInteger, nullable=False),
        sa.Column("this_update", UTCDateTime, nullable=False),
        sa.Column("next_update", UTCDateTime, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("authority_id", "shard", "kind", "number",
                            name="uq_shard_crls_scope_kind_number"),
    )


def downgrade() -> None:
    op.drop_table("shard_crls")
    op.drop_table("crl_shards")
    op.drop_index("ix_certificates_crl_shard", "certificates")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("crl_shard")
    with op.batch_alter_table("authorities") as batch:
        batch.drop_column("crl_shard_seconds")
