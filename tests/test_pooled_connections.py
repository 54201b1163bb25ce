"""A node's PostgreSQL pools (issue 21): read units run in autocommit on read-only sessions
(`store.database`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from iotpki.store.database import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_schema_url: str) -> Iterator[Database]:
    database = Database(postgres_schema_url)
    database.migrate_if_needed()
    try:
        yield database
    finally:
        database.dispose()


def count_events(database: Database) -> int:
    with database.read_unit_of_work() as uow:
        return int(uow._connection.execute(text("SELECT count(*) FROM events")).scalar_one())


def test_a_read_unit_cannot_write(database: Database) -> None:
    """Autocommit would commit a stray write at once: the session refuses it instead."""
    before = count_events(database)
    with pytest.raises(DBAPIError, match="read-only transaction"), \
            database.read_unit_of_work() as uow:
        uow._connection.execute(text("INSERT INTO events (type, at, payload) "
                                     "VALUES ('stray', :at, '{}')"), {"at": datetime.now(UTC)})
    assert count_events(database) == before


def test_a_snapshot_unit_reads_one_snapshot(database: Database) -> None:
    with database.snapshot_unit_of_work() as uow:
        first = uow._connection.execute(text("SELECT count(*) FROM events")).scalar_one()
        with database.unit_of_work() as writer:
            writer._connection.execute(text("INSERT INTO events (type, at, payload) "
                                            "VALUES ('t', :at, '{}')"), {"at": datetime.now(UTC)})
            writer.commit()
        assert uow._connection.execute(text("SELECT count(*) FROM events")).scalar_one() == first
    assert count_events(database) == first + 1  # a read unit reads the newest commit
