"""Organization repository."""

from __future__ import annotations

from sqlalchemy import Connection, Row, select

from iotpki.core.supply_chain.organization import Organization
from iotpki.store.prepared import Prepared
from iotpki.store.schema import organizations

# Writes (store.prepared: the one write path).
_ADD = Prepared(organizations.insert().inline(), ("label", "name", "created_at"))


class SQLOrganizationRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, organization: Organization) -> None:
        _ADD.execute(self._conn, dict(
            label=organization.label, name=organization.name, created_at=organization.created_at))

    def get(self, label: str) -> Organization | None:
        row = self._conn.execute(
            select(organizations).where(organizations.c.label == label)).first()
        return _organization(row) if row is not None else None

    def list(self) -> list[Organization]:
        rows = self._conn.execute(select(organizations).order_by(organizations.c.label))
        return [_organization(r) for r in rows]


def _organization(row: Row) -> Organization:  # type: ignore[type-arg]
    return Organization(row.label, row.name, row.created_at)
