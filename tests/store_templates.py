"""Migrated stores made once per test process and copied for every test that needs one.

Running the Alembic chain costs about 0.1 s on SQLite and 0.35 s on PostgreSQL (some 140
DDL statements), and most tests start from an empty store at the newest revision: each
worker migrates one template per database with the real migrations, then
- SQLite: the template's database file is copied into the test's data directory;
- PostgreSQL: the template schema, dumped once with `pg_dump`, is replayed under the test's
  schema name in one round trip.
`build_pki` then finds the schema at its head and migrates nothing. Tests of the migrations
themselves (tests/test_migrations.py) still downgrade and upgrade their copy with Alembic.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text

from iotpki.store.database import Database, sqlite_url

SQLITE_FILE = "iotpki.db"


@cache
def _sqlite_template() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="iotpki-template-"))
    atexit.register(shutil.rmtree, directory, True)
    database = Database(sqlite_url(directory))
    try:
        database.migrate()
    finally:
        database.dispose()  # the last connection closed checkpoints the WAL into the file
    assert not (directory / f"{SQLITE_FILE}-wal").exists(), "the template's WAL was kept"
    return directory / SQLITE_FILE


def seed_sqlite(data_dir: Path) -> None:
    """A migrated, empty SQLite store in `data_dir` (as `open_database` would make it:
    the directory 0700, the file 0600), unless the directory already holds one."""
    target = data_dir / SQLITE_FILE
    if target.exists():
        return
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template(), target)
    target.chmod(0o600)


@cache
def _postgres_dump(url: str) -> tuple[str, str] | None:
    """(template schema name, its dump without psql commands and session settings); None
    without a working pg_dump (then every schema is migrated by Alembic)."""
    if shutil.which("pg_dump") is None:
        return None
    schema = f"tmpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    atexit.register(_drop, url, schema)
    database = Database(f"{url}?options=-csearch_path%3D{schema}")
    try:
        database.migrate()
    finally:
        database.dispose()
        admin.dispose()
    where = make_url(url)
    environment = {**os.environ, **({"PGPASSWORD": where.password} if where.password else {})}
    dumped = subprocess.run(
        ["pg_dump", "-w", "-h", where.host or "127.0.0.1", "-p", str(where.port or 5432),
         "-U", where.username or "postgres", "-d", where.database or "postgres",
         "--schema", schema, "--inserts", "--no-owner", "--no-privileges", "--no-comments"],
        capture_output=True, text=True, env=environment, timeout=60)
    if dumped.returncode != 0:  # another server version, credentials: Alembic it is
        warnings.warn(f"pg_dump failed, every schema is migrated: {dumped.stderr.strip()}",
                      stacklevel=1)
        return None
    dump = dumped.stdout
    statements = [line for line in dump.splitlines()
                  if not line.startswith(("--", "\\", "SET ")) and "set_config" not in line]
    return schema, "\n".join(statements)


def clone_schema(admin: Engine, url: str, schema: str) -> bool:
    """Create `schema` as a copy of the migrated template; False (nothing made) without a
    working pg_dump."""
    template = _postgres_dump(url)
    if template is None:
        return False
    name, dump = template
    raw = admin.raw_connection()
    try:
        raw.driver_connection.execute(dump.replace(name, schema))  # type: ignore[union-attr]
    finally:
        raw.close()
    return True


def _drop(url: str, schema: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()
