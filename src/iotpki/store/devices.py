"""Device repository: devices and the components they are built from."""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from iotpki.core.device import Device
from iotpki.core.errors import ConflictError
from iotpki.store.ids import IdCache
from iotpki.store.schema import device_components, devices, organizations


class SQLDeviceRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, device: Device) -> None:
        try:
            self._conn.execute(devices.insert().values(
                id=device.id, name=device.name, component_digest=device.component_digest.hex(),
                organization_id=self._ids.id_of(self._conn, organizations, device.organization),
                created_at=device.created_at))
        except IntegrityError as exc:
            raise ConflictError(f"{device.organization} has a device named {device.name!r}") from exc
        self._conn.execute(device_components.insert(),
                           [{"device_id": device.id, "component": c} for c in device.components])

    def get(self, device_id: str) -> Device | None:
        row = self._conn.execute(select(devices).where(devices.c.id == device_id)).first()
        if row is None:
            return None
        components = tuple(sorted(self._conn.execute(select(device_components.c.component).where(
            device_components.c.device_id == device_id)).scalars()))
        return Device(row.id, self._ids.label_of(self._conn, organizations, row.organization_id),
                      row.name, components, bytes.fromhex(row.component_digest), row.created_at)

    def containing(self, organization: str, component: str) -> Device | None:
        device_id = self._conn.execute(
            select(devices.c.id).join(device_components, device_components.c.device_id == devices.c.id)
            .where(device_components.c.component == component,
                   devices.c.organization_id == self._ids.id_of(self._conn, organizations, organization))
        ).scalar()
        return self.get(device_id) if device_id is not None else None
