"""The posture check "the same public key on two devices" reads the keys recorded as on two
or more devices of one owner (`store.shared_keys`: recorded as identities are linked and
devices change owner), not every certificate. The record starts from what the store holds:
one set-based statement over the key index (`ix_certificates_key_id`, 0022).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_keys",
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("organizations.id"), primary_key=True),
        sa.Column("key_id", sa.String(64), primary_key=True),
    )
    # A key on two devices of the same owner: keys in one certificate (most of them, in a
    # store without shared keys) are left out by the key index before any join.
    op.execute("""
        INSERT INTO shared_keys (owner_id, key_id)
        SELECT d.owner_id, c.key_id
        FROM certificates c
        JOIN device_identities i ON i.fingerprint = c.fingerprint
        JOIN devices d ON d.id = i.device_id
        WHERE c.key_id IN (SELECT key_id FROM certificates WHERE key_id IS NOT NULL
                           GROUP BY key_id HAVING count(*) > 1)
          AND d.owner_id IS NOT NULL
        GROUP BY d.owner_id, c.key_id
        HAVING count(DISTINCT d.id) > 1
    """)


def downgrade() -> None:
    op.drop_table("shared_keys")
