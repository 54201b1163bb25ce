"""The posture checks (the console's screen 8) ask set-based questions of certificates: the
same public key twice, weak keys, the operational domain named. Each certificate keeps its
key's identity and strength (core.ca.key_facts) and its domain, indexed; rows stored before
are filled in here from their DER.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from cryptography import x509

from iotpki.core.ca.key_facts import KeyFacts
from iotpki.core.supply_chain.domain import DOMAIN_URN_PREFIX

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BATCH = 2_000
COLUMNS = (("key_id", sa.String(64)), ("key_algorithm", sa.String(16)),
           ("key_bits", sa.Integer()), ("domain", sa.String(253)))


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind))
    _fill()
    op.create_index("ix_certificates_key_id", "certificates", ["key_id"])
    op.create_index("ix_certificates_key_strength", "certificates",
                    ["authority_id", "key_algorithm", "key_bits"])
    op.create_index("ix_certificates_domain", "certificates", ["domain"])


def _fill() -> None:
    table = sa.table("certificates", sa.column("id", sa.BigInteger), sa.column("der"),
                     sa.column("sans", sa.Text), *(sa.column(name) for name, _ in COLUMNS))
    conn = op.get_bind()
    fill = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(
        key_id=sa.bindparam("k"), key_algorithm=sa.bindparam("a"), key_bits=sa.bindparam("b"),
        domain=sa.bindparam("d"))
    after = -1
    prefix = f"uri:{DOMAIN_URN_PREFIX}"
    while True:
        rows = conn.execute(sa.select(table.c.id, table.c.der, table.c.sans)
                            .where(table.c.id > after).order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = []
        for row_id, der, sans in rows:
            key = KeyFacts.of(x509.load_der_x509_certificate(bytes(der)).public_key())
            domains = [s[len(prefix):] for s in (sans or "").split("\n") if s.startswith(prefix)]
            values.append({"row_id": row_id, "k": key.key_id, "a": key.algorithm,
                           "b": key.bits, "d": min(domains, default=None)})
        conn.execute(fill, values)
        after = rows[-1][0]


def downgrade() -> None:
    for name in ("ix_certificates_domain", "ix_certificates_key_strength",
                 "ix_certificates_key_id"):
        op.drop_index(name, "certificates")
    with op.batch_alter_table("certificates") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
