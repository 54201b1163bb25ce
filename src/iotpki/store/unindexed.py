"""`unindexed(column)`: the same value, kept off SQLite's indexes, left alone elsewhere.

SQLite keeps no statistics here, so offered an equality on a column that has an index it
starts from that index even when a join from a handful of rows would be cheaper (reading
every device of an owner, or every certificate of an authority). The unary `+` disqualifies
a term from index use (sqlite.org/optoverview.html, "Disqualifying WHERE clause terms using
unary-'+'"). PostgreSQL has statistics and weighs the plans itself; there the column is
written as it is, since any expression around it (the `COALESCE(x, x)` used before) hides
the column's statistics and makes the planner guess: at 1,000,000 certificates it then
drove the posture queries from every device of the owner (seconds, not milliseconds).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class unindexed(ColumnElement[Any]):
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(unindexed)
def _as_it_is(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(unindexed, "sqlite")
def _off_the_index(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.column, **kw)}"
