"""Device repository: devices, the components they are built from, their lifecycle state,
owner and the identities issued for them (history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, literal, literal_column, select, tuple_, union_all, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.errors import ConflictError
from iotpki.core.lifecycle.device import COMPONENT_STAGE, Device, DeviceIdentity, DeviceState
from iotpki.store import shared_keys
from iotpki.store.certificates import SQLCertificateRepository
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import device_components, device_identities, devices, organizations

# Prepared (store.prepared): every renewal asks which device holds the presented identity,
# an issued identity first, else a component: one statement (a round trip on PostgreSQL).
_DEVICE_OF_IDENTITY = Prepared(union_all(
    select(literal_column("0").label("rank"), device_identities.c.device_id).where(
        device_identities.c.fingerprint == bindparam("fingerprint")),
    select(literal_column("1").label("rank"), device_components.c.device_id).where(
        device_components.c.component == bindparam("fingerprint")),
).order_by("rank").limit(1))
_OWNER = Prepared(select(devices.c.owner_id).where(devices.c.id == bindparam("device")))

# Writes (store.prepared: the one write path).
_ADD = Prepared(devices.insert().inline(), (
    "id", "name", "component_digest", "organization_id", "owner_id", "state",
    "state_changed_at", "created_at"))
_ADD_COMPONENT = Prepared(device_components.insert().inline(), ("device_id", "component"))
_LINK = Prepared(device_identities.insert().inline(),
                 ("device_id", "fingerprint", "stage", "linked_at"))
_MOVE = Prepared(update(devices).where(
    devices.c.id == bindparam("device"), devices.c.state == bindparam("expected"),
).values(state=bindparam("state"), owner_id=bindparam("owner"),
         state_changed_at=bindparam("at")))


class SQLDeviceRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _org_id(self, label: str) -> int:
        return self._ids.id_of(self._conn, organizations, label)

    def add(self, device: Device) -> None:
        try:
            _ADD.execute(self._conn, dict(
                id=device.id, name=device.name, component_digest=device.component_digest.hex(),
                organization_id=self._org_id(device.organization),
                owner_id=self._org_id(device.current_owner), state=device.state.value,
                state_changed_at=device.state_changed_at, created_at=device.created_at))
        except IntegrityError as exc:
            raise ConflictError(f"{device.organization} has a device named {device.name!r}") from exc
        _ADD_COMPONENT.execute_many(
            self._conn, [{"device_id": device.id, "component": c} for c in device.components])

    def get(self, device_id: str) -> Device | None:
        row = self._conn.execute(select(devices).where(devices.c.id == device_id)).first()
        return self._device(row) if row is not None else None

    def device(self, row: Row[Any]) -> Device:
        """The device of a `devices` row another repository selected."""
        return self._device(row)

    def _device(self, row: Row[Any]) -> Device:
        components = tuple(sorted(self._conn.execute(select(device_components.c.component).where(
            device_components.c.device_id == row.id)).scalars()))
        organization = self._ids.label_of(self._conn, organizations, row.organization_id)
        owner = (self._ids.label_of(self._conn, organizations, row.owner_id)
                 if row.owner_id is not None else organization)
        return Device(row.id, organization, row.name, components,
                      bytes.fromhex(row.component_digest), row.created_at,
                      DeviceState(row.state), owner, row.state_changed_at)

    def containing(self, organization: str, component: str) -> Device | None:
        device_id = self._conn.execute(
            select(devices.c.id).join(device_components, device_components.c.device_id == devices.c.id)
            .where(device_components.c.component == component,
                   devices.c.organization_id == self._org_id(organization))
        ).scalar()
        return self.get(device_id) if device_id is not None else None

    def with_identity(self, fingerprint: str) -> Device | None:
        found = _DEVICE_OF_IDENTITY.first(self._conn, {"fingerprint": fingerprint})
        return self.get(found[1]) if found is not None else None

    def named(self, organization: str, name: str) -> Device | None:
        row = self._conn.execute(select(devices).where(
            devices.c.organization_id == self._org_id(organization), devices.c.name == name)).first()
        return self._device(row) if row is not None else None

    def link(self, device_id: str, fingerprint: str, stage: str, at: datetime) -> None:
        _LINK.execute(self._conn, dict(
            device_id=device_id, fingerprint=fingerprint, stage=stage, linked_at=at))
        shared_keys.record_linked(self._conn, device_id, fingerprint)

    def move(self, device_id: str, expected: DeviceState, state: DeviceState, owner: str,
             at: datetime) -> bool:
        previous = _OWNER.first(self._conn, {"device": device_id})
        owner_id = self._org_id(owner)
        if _MOVE.execute(self._conn, {
                "device": device_id, "expected": expected.value, "state": state.value,
                "owner": owner_id, "at": at}) != 1:
            return False
        if previous is not None and previous[0] != owner_id:
            shared_keys.recheck_owners(self._conn, device_id, previous[0])
        return True

    def history(self, device_id: str) -> list[DeviceIdentity]:
        certificates = SQLCertificateRepository(self._conn, self._ids)
        components = self._conn.execute(
            select(device_components.c.component, devices.c.created_at)
            .join(devices, devices.c.id == device_components.c.device_id)
            .where(device_components.c.device_id == device_id)
            .order_by(device_components.c.component)).all()
        linked = self._conn.execute(select(device_identities).where(
            device_identities.c.device_id == device_id).order_by(
            device_identities.c.linked_at, device_identities.c.fingerprint)).all()
        return [
            *(DeviceIdentity(r.component, COMPONENT_STAGE, r.created_at,
                             certificates.get_by_fingerprint(r.component)) for r in components),
            *(DeviceIdentity(r.fingerprint, r.stage, r.linked_at,
                             certificates.get_by_fingerprint(r.fingerprint)) for r in linked),
        ]

    def find(self, owner: str | None, state: DeviceState | None, limit: int,
             offset: int, after: tuple[datetime, str] | None = None) -> list[Device]:
        stmt = select(devices)
        if after is not None:  # keyset: ix_devices_owner_created
            stmt = stmt.where(tuple_(devices.c.created_at, devices.c.id) > tuple_(
                literal(after[0], devices.c.created_at.type), literal(after[1])))
        if owner is not None:
            stmt = stmt.where(devices.c.owner_id == self._org_id(owner))
        if state is not None:
            stmt = stmt.where(devices.c.state == state.value)
        stmt = stmt.order_by(devices.c.created_at, devices.c.id).limit(limit)
        rows = self._conn.execute(stmt.offset(offset) if offset else stmt).all()
        return [self._device(r) for r in rows]
