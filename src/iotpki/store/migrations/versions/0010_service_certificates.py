"""One table for the keys and certificates the service holds for itself
(`core.ca.service_certificates`): the rows of `ocsp_responders`, `cmp_protection` and
`organization_keys` move into `service_certificates` (owner label, purpose), and those
tables go.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iotpki.store.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The per-authority tables this replaces, with the purpose their rows had.
_AUTHORITY_TABLES = (("ocsp_responders", "ocsp-responder"), ("cmp_protection", "cmp-protection"))


def upgrade() -> None:
    op.create_table(
        "service_certificates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_service_certificates_owner_purpose", "service_certificates",
                    ["owner", "purpose", "id"])
    for table, purpose in _AUTHORITY_TABLES:
        op.execute(sa.text(
            "INSERT INTO service_certificates (owner, purpose, key_ref, certificate, created_at) "
            f"SELECT a.label, '{purpose}', t.key_ref, t.certificate, t.created_at FROM {table} t "
            "JOIN authorities a ON a.id = t.authority_id"))
    op.execute(sa.text(
        "INSERT INTO service_certificates (owner, purpose, key_ref, certificate, created_at) "
        "SELECT o.label, k.purpose, k.key_ref, k.certificate, k.created_at "
        "FROM organization_keys k JOIN organizations o ON o.id = k.organization_id ORDER BY k.id"))
    for table in ("ocsp_responders", "cmp_protection", "organization_keys"):
        op.drop_table(table)


def downgrade() -> None:
    op.create_table(
        "ocsp_responders",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("not_after", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "cmp_protection",
        sa.Column("authority_id", sa.Integer, sa.ForeignKey("authorities.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "organization_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id"),
                  nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("key_ref", sa.String(1024), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    _move_rows_out()
    op.drop_index("ix_service_certificates_owner_purpose", "service_certificates")
    op.drop_table("service_certificates")


def _move_rows_out() -> None:
    """The newest certificate of each authority back into its table (not_after read from the
    DER), the organizations' rows as they are; key-delivery rows had no table and are dropped."""
    from cryptography import x509

    conn = op.get_bind()
    table = sa.table("service_certificates", sa.column("id"), sa.column("owner"),
                     sa.column("purpose"), sa.column("key_ref"), sa.column("certificate"),
                     sa.column("created_at", UTCDateTime))
    authorities = sa.table("authorities", sa.column("id"), sa.column("label"))
    newest = sa.select(sa.func.max(table.c.id)).group_by(table.c.owner, table.c.purpose)
    rows = conn.execute(sa.select(table, authorities.c.id.label("authority_id")).join(
        authorities, authorities.c.label == table.c.owner).where(
        table.c.id.in_(newest))).mappings().all()
    for old, purpose in _AUTHORITY_TABLES:
        target = sa.table(old, sa.column("authority_id"), sa.column("key_ref"),
                          sa.column("certificate"), sa.column("created_at", UTCDateTime),
                          *([sa.column("not_after", UTCDateTime)]
                            if old == "ocsp_responders" else []))
        for row in (r for r in rows if r["purpose"] == purpose):
            values = {"authority_id": row["authority_id"], "key_ref": row["key_ref"],
                      "certificate": row["certificate"], "created_at": row["created_at"]}
            if old == "ocsp_responders":
                values["not_after"] = x509.load_der_x509_certificate(
                    bytes(row["certificate"])).not_valid_after_utc
            conn.execute(target.insert().values(**values))
    op.execute(sa.text(
        "INSERT INTO organization_keys (organization_id, purpose, key_ref, certificate, "
        "created_at) SELECT o.id, s.purpose, s.key_ref, s.certificate, s.created_at "
        "FROM service_certificates s JOIN organizations o ON o.label = s.owner "
        "WHERE s.purpose = 'manifest-signer' ORDER BY s.id"))
