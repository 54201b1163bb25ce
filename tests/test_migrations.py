"""The Alembic migrations create exactly the tables `store.schema` describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from iotpki.app import PKI
from iotpki.store.schema import metadata


def test_migrated_schema_matches_the_model(pki: PKI) -> None:
    with pki.database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrating_twice_is_harmless(pki: PKI) -> None:
    pki.database.migrate()
    with pki.database.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is not None
