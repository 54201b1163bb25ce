"""The device inventory's pages (`core.lifecycle.device_inventory`): devices of one owner in
(created_at, id) order from the `ix_devices_owner_created` index (migration 0020), a page
starting after the last one shown; identity filters are EXISTS subqueries over the device's
identities and their certificates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, literal, or_, select, tuple_

from iotpki.core.lifecycle.device import Device
from iotpki.core.lifecycle.device_inventory import DeviceQuery
from iotpki.core.supply_chain.domain import DOMAIN_URN_PREFIX
from iotpki.store.devices import SQLDeviceRepository
from iotpki.store.ids import IdCache
from iotpki.store.schema import certificates, device_identities, devices, organizations


class SQLDeviceInventory:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def page(self, query: DeviceQuery) -> list[Device]:
        d = devices.c
        stmt = select(devices).where(d.owner_id == self._ids.id_of(
            self._conn, organizations, query.owner))
        if query.state is not None:
            stmt = stmt.where(d.state == query.state.value)
        identity = _identity_conditions(query)
        if identity:
            stmt = stmt.where(_has_identity(and_(*identity)))
        if query.search:
            stmt = stmt.where(or_(d.name == query.search, _has_identity(_matches(query.search))))
        if query.after is not None:
            stmt = stmt.where(tuple_(d.created_at, d.id)
                              > tuple_(_bound(query.after.created_at), query.after.device_id))
        rows = self._conn.execute(stmt.order_by(d.created_at, d.id).limit(query.limit)).all()
        reader = SQLDeviceRepository(self._conn, self._ids)
        return [reader.device(r) for r in rows]


def _bound(value: Any) -> Any:
    return literal(value, devices.c.created_at.type)


def _has_identity(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    i, c = device_identities.c, certificates.c
    return exists(select(1).select_from(device_identities.join(
        certificates, c.fingerprint == i.fingerprint)).where(
        i.device_id == devices.c.id, condition))


def _identity_conditions(query: DeviceQuery) -> list[ColumnElement[bool]]:
    c = certificates.c
    found: list[ColumnElement[bool]] = []
    if query.profile:
        found.append(c.profile == query.profile)
    if query.domain:
        found.append(c.sans.contains(f"uri:{DOMAIN_URN_PREFIX}{query.domain}", autoescape=True))
    if query.expires_before is not None:
        found.append(and_(c.not_after < query.expires_before, c.status != "revoked"))
    return found


def _matches(term: str) -> ColumnElement[bool]:
    """A serial (hex), a fingerprint, a subject containing the term, or a SAN value."""
    c = certificates.c
    compact = term.lower().removeprefix("0x").replace(":", "")
    return or_(c.serial == compact, c.fingerprint == compact,
               c.subject.contains(term, autoescape=True),
               c.sans.contains(term, autoescape=True))
