"""The key archive (`core.ports.KeyArchiveRepository`): sealed server-generated keys."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from iotpki.core.ca.ports import ArchivedKey
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import authorities, key_archive

# Writes (store.prepared: the one write path).
_ADD = Prepared(insert(key_archive).inline(),
                ("fingerprint", "serial_hex", "sealed", "authority_id", "archived_at"))


class SQLKeyArchiveRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, key: ArchivedKey) -> None:
        _ADD.execute(self._conn, {
            "fingerprint": key.fingerprint, "serial_hex": key.serial_hex, "sealed": key.sealed,
            "authority_id": self._ids.id_of(self._conn, authorities, key.authority),
            "archived_at": key.archived_at})

    def get(self, fingerprint: str) -> ArchivedKey | None:
        row = self._conn.execute(select(key_archive).where(
            key_archive.c.fingerprint == fingerprint)).first()
        if row is None:
            return None
        return ArchivedKey(self._ids.label_of(self._conn, authorities, row.authority_id),
                           row.serial_hex, row.fingerprint, row.sealed, row.archived_at)
