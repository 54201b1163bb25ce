"""Executing one statement for many rows at the driver level (`cursor.executemany`).

SQLAlchemy builds and type-processes a parameter dictionary per row; for the hundred
thousand rows of a bulk revocation that costs more than the database work. Here each
column's bind processor runs once per distinct value (most values repeat: one timestamp,
one reason) and rows go to the driver as plain tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection


def processors(conn: Connection, columns: Sequence[Column[Any]]) -> list[Callable[[Any], Any]]:
    """One memoizing bind processor per column (identity for columns without one)."""
    dialect = conn.dialect
    found: list[Callable[[Any], Any]] = []
    for column in columns:
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        found.append(_memoized(processor) if processor is not None else _identity)
    return found


def _identity(value: Any) -> Any:
    return value


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


def execute_many(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`sql` written with `?` markers; rewritten for drivers of the `format` style."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, list(rows))


def process_rows(conn: Connection, columns: Sequence[Column[Any]],
                 rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    bind = processors(conn, columns)
    return [tuple(p(v) for p, v in zip(bind, row, strict=True)) for row in rows]


def insert_many(conn: Connection, columns: Sequence[Column[Any]],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT rows (tuples in `columns` order) into the columns' table."""
    table = columns[0].table
    names = ", ".join(c.name for c in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"
    execute_many(conn, sql, process_rows(conn, columns, rows))
