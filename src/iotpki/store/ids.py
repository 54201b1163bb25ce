"""Label → row id lookups, cached for the process: ids of organizations and authorities never change."""

from __future__ import annotations

from sqlalchemy import Connection, Table, select

from iotpki.core.errors import NotFoundError


class IdCache:
    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._labels: dict[tuple[str, int], str] = {}

    def id_of(self, conn: Connection, table: Table, label: str) -> int:
        key = (table.name, label)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        row_id = conn.execute(select(table.c.id).where(table.c.label == label)).scalar()
        if row_id is None:
            raise NotFoundError(f"unknown {table.name[:-1].replace('ie', 'y')} {label!r}")
        self._ids[key] = int(row_id)
        self._labels[(table.name, int(row_id))] = label
        return int(row_id)

    def label_of(self, conn: Connection, table: Table, row_id: int) -> str:
        key = (table.name, row_id)
        cached = self._labels.get(key)
        if cached is not None:
            return cached
        label = conn.execute(select(table.c.label).where(table.c.id == row_id)).scalar_one()
        self._labels[key] = label
        self._ids[(table.name, label)] = row_id
        return str(label)
