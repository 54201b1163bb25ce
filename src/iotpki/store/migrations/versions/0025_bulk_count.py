"""The console's bulk revocation counts before it revokes (issue 18): by profile over an
index led by the profile (also the infrastructure profiles' certificates it leaves alone),
and by subject prefix over ix_certificates_subject, which PostgreSQL then keeps in
varchar_pattern_ops (a LIKE prefix can use it whatever the database's collation; equality
still can). SQLite's index serves the prefix as a range as it is.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_certificates_profile", "certificates",
                    ["profile", "authority_id", "status", "not_after"])
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_certificates_subject", "certificates")
        op.create_index("ix_certificates_subject", "certificates", ["subject"],
                        postgresql_ops={"subject": "varchar_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_certificates_subject", "certificates")
        op.create_index("ix_certificates_subject", "certificates", ["subject"])
    op.drop_index("ix_certificates_profile", "certificates")
