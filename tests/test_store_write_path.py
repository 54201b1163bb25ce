"""The store has one write path: every row write runs a module-level `store.prepared.Prepared`
statement (`execute` for one row, `execute_many` for a batch of any size). A store module that
executes an INSERT, UPDATE or DELETE through SQLAlchemy Core or the driver directly fails here."""

from __future__ import annotations

import re
from pathlib import Path

import iotpki.store

STORE = Path(iotpki.store.__file__).parent
# `conn.execute(insert(t)...)`, `conn.execute(t.update()...)`, `conn.execute(_STMT, rows)` of a
# write built elsewhere is caught by the second pattern only when inline; driver-level SQL too.
_DIRECT_WRITE = re.compile(
    r"\.execute\(\s*(?:\w+\.)?(?:insert|update|delete)\("   # execute(insert(...), execute(pg.insert(
    r"|\.execute\(\s*\w+\.(?:insert|update|delete)\(\)"      # execute(table.insert()...
    r"|exec_driver_sql\(\s*(?![\"'](?:SELECT|PRAGMA))"      # driver SQL other than reads/pragmas
    r"|\.execute\(\s*[\"'](?:INSERT|UPDATE|DELETE)",          # raw SQL text
    re.IGNORECASE)


def _offenders(source: str) -> list[str]:
    return [m.group(0) for m in _DIRECT_WRITE.finditer(source)]


def test_store_modules_write_only_through_prepared() -> None:
    found = {}
    for path in sorted(STORE.glob("*.py")):
        if path.name == "prepared.py":
            continue
        hits = _offenders(path.read_text())
        if hits:
            found[path.name] = hits
    assert found == {}


def test_the_scan_sees_direct_writes() -> None:
    """The patterns match the forms the store used before it had one write path."""
    for source in ("self._conn.execute(insert(acme_nonces).values(nonce=n))",
                   "self._conn.execute(update(certificates).where(x))",
                   "conn.execute(\n    delete(t).where(x))",
                   "self._conn.execute(dialect.insert(crl_numbers).values(a=1))",
                   "self._conn.execute(organizations.insert().values(label=l))",
                   "self._conn.exec_driver_sql(sql, rows)",
                   "cursor.execute('UPDATE certificates SET status = ?')"):
        assert _offenders(source), source
    assert not _offenders("_ADD.execute(self._conn, {'nonce': n})")
    assert not _offenders("self._conn.execute(select(t.c.id).where(t.c.id == 1))")
