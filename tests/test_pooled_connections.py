"""A node's PostgreSQL pools (issue 21): read units run in autocommit on read-only sessions
(`store.database`), and a pooled connection the server closed is replaced when a unit
takes it, without a ping at every checkout (`store.liveness`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from iotpki.core.errors import ConfigurationError
from iotpki.store.database import Database
from iotpki.store.unit_of_work import SQLUnitOfWork
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_schema_url: str) -> Iterator[Database]:
    database = Database(postgres_schema_url)
    database.migrate_if_needed()
    try:
        yield database
    finally:
        database.dispose()


def backend(unit: Callable[[], SQLUnitOfWork]) -> int:
    with unit() as uow:
        return int(uow._connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


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


@pytest.mark.parametrize("kind", ["read", "write"])
def test_a_connection_the_server_ended_is_replaced_when_taken(database: Database,
                                                                kind: str) -> None:
    unit = database.read_unit_of_work if kind == "read" else database.unit_of_work
    ended = backend(unit)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:  # waits (5 s at most) until the backend has exited
            assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"),
                                {"pid": ended}).scalar_one()
    finally:
        admin.dispose()
    assert backend(unit) != ended


def test_a_postgresql_url_names_psycopg() -> None:
    """The store speaks psycopg 3 (pipelines, its connection flags): another driver is refused
    at start, not at the first unit of work."""
    with pytest.raises(ConfigurationError, match=r"postgresql\+psycopg://"):
        Database("postgresql+psycopg2://postgres@127.0.0.1/test")
