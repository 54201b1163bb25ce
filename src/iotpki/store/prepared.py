"""Hot-path statements compiled once per dialect and run on the unit's DB-API connection.

SQLAlchemy Core's execution context costs about 30 µs a statement, more than SQLite takes to
run one, and issuing a certificate runs about seven (docs/performance.md). A `Prepared`
statement is still written as a Core construct against `store.schema` (one definition for
SQLite and PostgreSQL), compiled once per dialect together with its types' bind and result
processors, and executed on the DB-API connection inside the transaction that SQLAlchemy
began: the same SQL, the same stored values, the same transaction. DB-API errors are raised
as SQLAlchemy's (`IntegrityError`, `OperationalError`), so callers handle them as before.

It is the store's one write path: a single row goes through `execute`, a batch of any size
(a million-entry manifest, a hundred-thousand-certificate revocation) through `execute_many`,
which binds the values shared by every row once and, for large batches, runs each column's
bind processor once per distinct value (most repeat: one timestamp, one reason). A statement
that differs per dialect (ON CONFLICT, `= ANY(array)`) is given as a function of the dialect
name and built once per dialect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any] | None
_MEMOIZE_FROM = 1000  # rows from which bind processors are memoized for one batch


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind names in the order the DB-API wants them (or as dict keys)
    positional: bool
    binds: tuple[Processor, ...]
    defaults: Mapping[str, Any]  # values written into the statement (`id == 1`)
    results: tuple[Processor, ...]


class Prepared:
    """One Core statement; bind values are given by bind name (for inserts: column key)."""

    def __init__(self, statement: Executable | Callable[[str], Executable],
                 column_keys: Sequence[str] | None = None) -> None:
        """`statement`, or a function building it for a dialect name (built once each)."""
        self._statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run once; the row count (for conditional updates)."""
        compiled, cursor = self._cursor(conn)
        try:
            cursor.execute(compiled.sql, _bound(compiled, params or {}))
            return int(cursor.rowcount)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(compiled, params, exc, conn.dialect) from exc
        finally:
            cursor.close()

    def execute_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]],
                     shared: Mapping[str, Any] | None = None) -> None:
        """Run once per row; `shared` holds the values common to every row (bound once)."""
        compiled, cursor = self._cursor(conn)
        rows = rows if isinstance(rows, Sequence) else list(rows)
        if not rows:
            cursor.close()
            return
        _run_many(conn, compiled, cursor, _bound_many(compiled, rows, shared or {}))

    def execute_rows(self, conn: Connection, names: Sequence[str],
                     rows: Sequence[tuple[Any, ...]], shared: Mapping[str, Any]) -> None:
        """Run once per row, each row a tuple of the values of `names` (columns without bind
        processing: text, numbers), the others from `shared`: no mapping per row, for
        batches of a million (a manifest import)."""
        compiled, cursor = self._cursor(conn)
        _run_many(conn, compiled, cursor, list(map(_row_maker(compiled, names, shared), rows)))

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        """The first row with the columns' result processing applied, or None."""
        rows = self._fetch(conn, params, one=True)
        return rows[0] if rows else None

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row, with the columns' result processing applied."""
        return self._fetch(conn, params, one=False)

    def _fetch(self, conn: Connection, params: Mapping[str, Any] | None,
               one: bool) -> list[tuple[Any, ...]]:
        compiled, cursor = self._cursor(conn)
        try:
            cursor.execute(compiled.sql, _bound(compiled, params or {}))
            if one:
                row = cursor.fetchone()
                rows = [row] if row is not None else []
            else:
                rows = cursor.fetchall()
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(compiled, params, exc, conn.dialect) from exc
        finally:
            cursor.close()
        results = compiled.results
        return [tuple(value if process is None or value is None else process(value)
                      for process, value in zip(results, row, strict=True)) for row in rows]

    def _cursor(self, conn: Connection) -> tuple[_Compiled, Any]:
        dialect = conn.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled, conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement: Any = self._statement
        if not isinstance(statement, Executable):
            statement = statement(dialect.name)
        compiled: Any = statement.compile(dialect=dialect, column_keys=self._column_keys)
        defaults = dict(compiled.params)
        names = tuple(compiled.positiontup if compiled.positional else defaults)
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        binds = tuple(by_name[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in names)
        columns = getattr(statement, "exported_columns", ())  # SELECT or RETURNING
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                        for c in columns)
        return _Compiled(str(compiled), names, bool(compiled.positional), binds, defaults,
                         results)


def execute_together(conn: Connection,
                     statements: Sequence[tuple[Prepared, Mapping[str, Any]]]) -> list[int]:
    """Run each statement once, in order; their row counts. On PostgreSQL in one psycopg
    pipeline: one round trip for all (an error in one is raised once all were sent, and
    the server ran none after it)."""
    dialect = conn.dialect
    runs = [(compiled, cursor, params) for statement, params in statements
            for compiled, cursor in [statement._cursor(conn)]]
    dbapi_connection: Any = conn.connection.dbapi_connection
    together = (dbapi_connection.pipeline() if dialect.name == "postgresql"
                else contextlib.nullcontext())
    try:
        with together:
            for compiled, cursor, params in runs:
                cursor.execute(compiled.sql, _bound(compiled, params))
        return [int(cursor.rowcount) for _, cursor, _ in runs]
    except dialect.loaded_dbapi.Error as exc:
        raise _wrapped(runs[0][0], None, exc, dialect) from exc
    finally:
        for _, cursor, _ in runs:
            cursor.close()


def _bound(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = []
    for name, process in zip(compiled.names, compiled.binds, strict=True):
        value = params[name] if name in params else compiled.defaults[name]
        values.append(value if process is None or value is None else process(value))
    return tuple(values) if compiled.positional else dict(zip(compiled.names, values, strict=True))


def _run_many(conn: Connection, compiled: _Compiled, cursor: Any, bound: list[Any]) -> None:
    """Every row's parameters through the cursor (one row: a plain execute), errors raised
    as SQLAlchemy's; the cursor is closed."""
    try:
        if len(bound) == 1:
            cursor.execute(compiled.sql, bound[0])
        else:
            cursor.executemany(compiled.sql, bound)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(compiled, bound, exc, conn.dialect) from exc
    finally:
        cursor.close()


def _row_maker(compiled: _Compiled, names: Sequence[str],
               shared: Mapping[str, Any]) -> Callable[[tuple[Any, ...]], Any]:
    """A function from a row of `names`' values to the statement's parameters: the shared
    values are processed once and appended, and `itemgetter` puts everything in the
    statement's order."""
    position = {name: index for index, name in enumerate(names)}
    if not position.keys() <= set(compiled.names):
        raise ValueError(f"not columns of this statement: {set(position) - set(compiled.names)}")
    tail: list[Any] = []
    order = []
    for name, process in zip(compiled.names, compiled.binds, strict=True):
        if name in position:
            if process is not None:
                raise ValueError(f"column {name} needs bind processing: use execute_many")
            order.append(position[name])
        else:
            value = shared[name] if name in shared else compiled.defaults[name]
            order.append(len(names) + len(tail))
            tail.append(value if process is None or value is None else process(value))
    shared_values = tuple(tail)
    pick = itemgetter(*order)
    if compiled.positional:
        return lambda row: pick(row + shared_values)
    keys = compiled.names
    return lambda row: dict(zip(keys, pick(row + shared_values), strict=True))


def _bound_many(compiled: _Compiled, rows: Sequence[Mapping[str, Any]],
                shared: Mapping[str, Any]) -> list[Any]:
    """Every row's parameters: shared and default values processed once, per-row values
    through their bind processor (memoized per distinct value for large batches)."""
    fixed: dict[int, Any] = {}
    varying: list[tuple[int, str, Callable[[Any], Any] | None]] = []
    memoize = len(rows) >= _MEMOIZE_FROM
    for index, (name, process) in enumerate(zip(compiled.names, compiled.binds, strict=True)):
        if name in shared or (name not in rows[0] if rows else True):
            value = shared[name] if name in shared else compiled.defaults[name]
            fixed[index] = value if process is None or value is None else process(value)
        else:
            varying.append((index, name, _memoized(process) if memoize and process
                            else process))
    if not fixed and all(process is None for _, _, process in varying):
        names = compiled.names
        if compiled.positional:
            return [tuple([row[n] for n in names]) for row in rows]
        return [{n: row[n] for n in names} for row in rows]
    template = [fixed.get(index) for index in range(len(compiled.names))]
    plain = [(index, name) for index, name, process in varying if process is None]
    processed = [(index, name, process) for index, name, process in varying
                 if process is not None]
    bound = []
    for row in rows:
        values = template.copy()
        for index, name in plain:
            values[index] = row[name]
        for index, name, process in processed:
            value = row[name]
            values[index] = value if value is None else process(value)
        bound.append(tuple(values) if compiled.positional
                     else dict(zip(compiled.names, values, strict=True)))
    return bound


def _memoized(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    cache: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = cache[value] = processor(value)
            return result
        except TypeError:  # unhashable
            return processor(value)

    return process


def _wrapped(compiled: _Compiled, params: Any, exc: Exception, dialect: Dialect) -> Exception:
    return DBAPIError.instance(compiled.sql, params, exc, dialect.loaded_dbapi.Error,
                               dialect=dialect)
