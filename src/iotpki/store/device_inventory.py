"""The device inventory's pages (`core.lifecycle.device_inventory`): devices of one owner in
(created_at, id) order from the `ix_devices_owner_created` index (migration 0020), a page
starting after the last one shown; identity filters are EXISTS subqueries over the device's
identities and their certificates; a search is a union of index lookups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Connection, and_, exists, literal, select, tuple_, union

from iotpki.core.lifecycle.device import Device
from iotpki.core.lifecycle.device_inventory import DeviceQuery
from iotpki.core.supply_chain.domain import DOMAIN_URN_PREFIX
from iotpki.store.certificates import subject_starting_with
from iotpki.store.devices import SQLDeviceRepository
from iotpki.store.ids import IdCache
from iotpki.store.schema import (
    authorities,
    certificates,
    device_identities,
    devices,
    organizations,
)


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
            stmt = stmt.where(d.id.in_(_matching(query.search, self._conn.dialect.name)))
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


def _matching(term: str, dialect: str) -> CompoundSelect[Any]:
    """Devices named `term`, or holding an identity whose serial (hex) or fingerprint is
    `term`, whose subject starts with `CN=<term>`, or whose operational domain is `term`:
    each an index lookup (a substring search would read every certificate)."""
    c, i, d = certificates.c, device_identities.c, devices.c
    compact = term.lower().removeprefix("0x").replace(":", "")
    common_name = f"CN={term}"
    fingerprints = union(
        select(c.fingerprint).where(c.fingerprint == compact),
        select(c.fingerprint).where(c.authority_id.in_(select(authorities.c.id)),
                                    c.serial == compact),
        select(c.fingerprint).where(*subject_starting_with(dialect, common_name)),
        select(c.fingerprint).where(c.domain == term))
    return union(
        select(d.id).where(d.organization_id.in_(select(organizations.c.id)), d.name == term),
        select(i.device_id).where(i.fingerprint.in_(fingerprints)))
