"""Engines and migrations. SQLite (WAL) in the data directory by default; PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError

from iotpki.core.errors import ConfigurationError
from iotpki.store.group_commit import GroupCommit, lock_path_for
from iotpki.store.ids import IdCache
from iotpki.store.liveness import check_on_checkout
from iotpki.store.replica import DEFAULT_MAX_LAG, ReplicaRouter
from iotpki.store.unit_of_work import READ_ONLY, SQLUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'iotpki.db'}"


def private_directory(path: Path) -> None:
    """The data directory, readable by its owner only (0700) even if it existed already:
    it holds the database, the keys and the passphrase."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def private_sqlite_files(data_dir: Path) -> None:
    """The database and its WAL/shared-memory/journal files 0600. SQLite creates the WAL and
    -shm files with the database file's permissions, so the database is created 0600 here
    before SQLite first opens it."""
    database = data_dir / "iotpki.db"
    os.close(os.open(database, os.O_CREAT | os.O_RDWR, 0o600))
    for name in ("iotpki.db", "iotpki.db-wal", "iotpki.db-shm", "iotpki.db-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(data_dir / name, 0o600)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a COMMIT returns once the WAL is on disk, so a certificate that left the
        # server survives a power cut (NORMAL could lose the last commits, and a certificate
        # that cannot be found cannot be revoked). docs/performance.md measures the cost.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")  # other processes hold the write lock briefly
        cursor.execute("PRAGMA foreign_keys=ON")
        # 256 MiB of page cache (an upper bound, allocated as used): bulk imports insert into
        # indexes of random keys (fingerprints), which thrash the 2 MiB default.
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that later upgrades can
        # deadlock against another writer and fail with "database is locked". Read-only units
        # begin deferred: in WAL mode they read a snapshot and never block a writer (issue 15
        # item 8). On the DB-API connection: every unit of work begins here, and
        # exec_driver_sql costs more than the BEGIN.
        begin = "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
        dbapi = conn.connection.dbapi_connection
        try:
            dbapi.execute(begin)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(begin, (), exc, sqlite3.Error,
                                      dialect=conn.dialect) from exc


_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*['\"]?(\w+)", re.MULTILINE)


def head_revision() -> str:
    """The newest revision of the (linear) migration chain, read from the version files
    without importing Alembic: the one revision no other names as its down_revision."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, value in _REVISION.findall(path.read_text()):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migration chain has {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _durable_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A COMMIT returns once its WAL record is flushed, whatever the server's default
        # (an operator's `synchronous_commit = off` would lose acknowledged certificates).
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = on")
        dbapi_connection.commit()


def _read_only_postgresql(url: str, **engine_options: Any) -> Engine:
    """Read units' own pool on PostgreSQL, in autocommit. A unit then costs no BEGIN and no
    ROLLBACK round trip (a CMP cr runs three read units), and its connection keeps psycopg's
    prepared statements, which every rollback() discards. Nothing is lost: in READ
    COMMITTED every statement of a transaction reads its own snapshot, as one in autocommit
    does (a `snapshot` unit begins a REPEATABLE READ transaction as before). Read-only
    sessions: a write in a read unit fails instead of committing on its own."""
    engine = _postgresql_engine(url, isolation_level="AUTOCOMMIT", **engine_options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
        dbapi_connection.commit()

    return engine


def _postgresql_engine(url: str, **engine_options: Any) -> Engine:
    """A pooled connection is tested when taken from the pool (`store.liveness`), so after
    a server restart or a failover (the URL may name several hosts,
    `target_session_attrs=read-write` picks the primary) the node reconnects by itself at
    the next unit of work; a unit does not start on a connection the server closed. A unit
    that fails on one is not retried here: a write whose COMMIT got no answer may have
    committed, and only its caller can check."""
    engine = create_engine(url, **engine_options)
    check_on_checkout(engine)
    return engine


def _require_psycopg(url: str) -> None:
    """The PostgreSQL store is written for psycopg 3 (pipelines, prepared statements, the
    connection's own liveness flags); another driver would fail at the first unit."""
    if make_url(url).get_dialect().driver != "psycopg":
        raise ConfigurationError("PostgreSQL is reached through psycopg 3: write the URL as "
                                 "postgresql+psycopg://user@host/database (or postgresql://)")


class Database:
    def __init__(self, url: str, group_commit: bool = False, read_url: str | None = None,
                 read_max_lag: float = DEFAULT_MAX_LAG, **engine_options: Any) -> None:
        """`group_commit`: this process's writers share transactions and COMMITs
        (`store.group_commit`; `iotpki serve` workers). `read_url`: a PostgreSQL read
        replica for `replica_unit_of_work` while it lags at most `read_max_lag` seconds
        (`store.replica`)."""
        self.url = url
        if url.startswith("postgresql"):
            _require_psycopg(url)
            self.engine = _postgresql_engine(url, **engine_options)
            self.read_engine = _read_only_postgresql(url, **engine_options)
        else:
            self.engine = self.read_engine = create_engine(url, **engine_options)
        if self.engine.dialect.name == "sqlite":
            _tune_sqlite(self.engine)
        elif self.engine.dialect.name == "postgresql":
            _durable_postgresql(self.engine)
        self._ids = IdCache()
        self._group = (GroupCommit(self.engine, lock_path_for(self.engine.url))
                       if group_commit else None)
        self.replicas = self._replica_router(read_url, read_max_lag)

    def _replica_router(self, read_url: str | None, max_lag: float) -> ReplicaRouter | None:
        if not read_url:
            return None
        if self.dialect != "postgresql" or not read_url.startswith("postgresql"):
            raise ConfigurationError("IOTPKI_DATABASE_READ_URL: a PostgreSQL read replica "
                                     "of a PostgreSQL database (IOTPKI_DATABASE_URL)")
        _require_psycopg(read_url)
        # A replica that does not answer must not hold a request for long: it is measured
        # from the request path (store.replica), and the primary serves meanwhile.
        replica = _postgresql_engine(read_url, isolation_level="AUTOCOMMIT",
                                     connect_args={"connect_timeout": 2})
        return ReplicaRouter(self.read_engine, replica, max_lag)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def schema_revision(self) -> str | None:
        """The Alembic revision of the schema; None when there is no iotpki schema."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            return None

    def migrate_if_needed(self) -> None:
        """Migrate only when behind: importing Alembic costs more than most commands."""
        if self.schema_revision() != head_revision():
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def unit_of_work(self) -> SQLUnitOfWork:
        return SQLUnitOfWork(self.engine, self._ids, group=self._group)

    def read_unit_of_work(self) -> SQLUnitOfWork:
        """A unit for readers that must see this node's own writes (the RA's checks before
        it writes, CMP transactions): it must not write."""
        return SQLUnitOfWork(self.read_engine, self._ids, read_only=True)

    def replica_unit_of_work(self) -> SQLUnitOfWork:
        """A unit for readers that may trail the primary by the replica's lag bound: OCSP,
        CRL serving, API listings. On the read replica while it is fresh enough, else as
        `read_unit_of_work`."""
        engine = self.replicas.engine() if self.replicas is not None else self.read_engine
        return SQLUnitOfWork(engine, self._ids, read_only=True)

    def snapshot_unit_of_work(self) -> SQLUnitOfWork:
        """As `replica_unit_of_work`, every statement reading the same snapshot: for a page
        whose figures are added up from several statements (the fleet overview's counters
        and its partial-day counts), none of which may see a commit the others did not."""
        engine = self.replicas.engine() if self.replicas is not None else self.read_engine
        return SQLUnitOfWork(engine, self._ids, read_only=True, snapshot=True)

    def dispose(self) -> None:
        if self._group is not None:
            self._group.close()
        if self.replicas is not None:
            self.replicas.replica.dispose()
        self.read_engine.dispose()
        self.engine.dispose()
