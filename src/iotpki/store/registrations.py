"""Registration and delivery repositories."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.errors import ConflictError
from iotpki.core.ra.ports import BulkIdentities, IdentityKey
from iotpki.core.ra.registration import Registration, RegistrationMethod, RegistrationStatus
from iotpki.core.supply_chain.ports import ImportedDelivery
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import authorities, deliveries, organizations, registrations
from iotpki.wire.names import format_san, parse_san, parse_subject

_ROW = ("id", "organization_id", "authority_id", "profile", "method", "subject", "sans",
        "identity_fingerprint", "identity_issuer", "identity_serial", "identity_key",
        "secret_hash", "secret_sealed", "status", "expires_at", "created_at", "created_by",
        "consumed_at", "certificate", "manifest", "component_id", "attributes", "reference",
        "uses_allowed", "uses", "failed_secrets", "locked_at")  # the keys of `_row`
_INSERT = Prepared(registrations.insert().inline(), _ROW)
_PER_IDENTITY = ("id", "identity_key", "identity_fingerprint", "identity_issuer",
                 "identity_serial", "component_id", "attributes")  # BulkIdentities' order
_SEPARATOR = "\n"
# A conditional update: of two concurrent requests for the last use only one sees rowcount 1.
# SET expressions read the row's old values (SQL standard; SQLite and PostgreSQL alike).
_R = registrations.c
_LAST_USE = _R.uses + 1 >= _R.uses_allowed
_CONSUME = Prepared(update(registrations).where(
    _R.id == bindparam("registration"),
    _R.status == RegistrationStatus.OPEN.value,
    _R.uses < _R.uses_allowed,
).values(uses=_R.uses + 1,
         status=case((_LAST_USE, RegistrationStatus.CONSUMED.value),
                     else_=RegistrationStatus.OPEN.value),
         consumed_at=case((_LAST_USE, bindparam("at", type_=_R.consumed_at.type)),
                          else_=_R.consumed_at),
         certificate=bindparam("certificate")))

_NOTE_FAILED_SECRET = Prepared(update(registrations).where(
    _R.id == bindparam("registration"), _R.locked_at.is_(None),
).values(failed_secrets=_R.failed_secrets + 1,
         locked_at=case((_R.failed_secrets + 1 >= bindparam("lock_after"),
                          bindparam("at", type_=_R.locked_at.type)),
                        else_=None)))
_UNLOCK = Prepared(update(registrations).where(_R.id == bindparam("registration"))
                   .values(failed_secrets=0, locked_at=None))
_CANCEL = Prepared(update(registrations).where(
    _R.id == bindparam("registration"), _R.status == RegistrationStatus.OPEN.value,
).values(status=RegistrationStatus.CANCELLED.value))
_ADD_DELIVERY = Prepared(deliveries.insert().inline(), (
    "sender", "recipient", "delivery_id", "direction", "entries", "created_at"))


class SQLRegistrationRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add_many(self, items: list[Registration]) -> None:
        if not items:
            return
        try:
            _INSERT.execute_many(self._conn, [self._row(r) for r in items])
        except IntegrityError as exc:
            raise ConflictError("a registration with this id exists already") from exc

    def add_bulk(self, template: Registration, identities: BulkIdentities) -> None:
        """One INSERT executed for every identity (a manifest may carry a million), with
        the template's values bound once (store.prepared)."""
        rows = identities.rows()
        if not rows:
            return
        shared = {k: v for k, v in self._row(template).items() if k not in _PER_IDENTITY}
        try:
            _INSERT.execute_rows(self._conn, _PER_IDENTITY, rows, shared)
        except IntegrityError as exc:
            raise ConflictError("a registration in the batch exists already") from exc

    def get(self, registration_id: str) -> Registration | None:
        row = self._conn.execute(
            select(registrations).where(registrations.c.id == registration_id)).first()
        return self._registration(row) if row is not None else None

    def for_identity(self, identity: IdentityKey) -> list[Registration]:
        c = registrations.c
        stmt = select(registrations).where(
            c.identity_key.in_([identity.fingerprint, identity.issuer_serial])
        ).order_by(c.created_at.desc())
        return [self._registration(r) for r in self._conn.execute(stmt)]

    def by_reference(self, reference: str) -> Registration | None:
        c = registrations.c
        row = self._conn.execute(select(registrations).where(c.reference == reference).order_by(
            (c.status == RegistrationStatus.OPEN.value).desc(), c.created_at.desc())
            .limit(1)).first()
        return self._registration(row) if row is not None else None

    def consume(self, registration_id: str, at: datetime, certificate: str) -> bool:
        return _CONSUME.execute(self._conn, {"registration": registration_id, "at": at,
                                             "certificate": certificate}) == 1

    def note_failed_secret(self, registration_id: str, at: datetime, lock_after: int) -> bool:
        """Count one wrong secret; True when this one locked the registration. One
        statement, so concurrent guesses on several nodes are all counted."""
        if _NOTE_FAILED_SECRET.execute(self._conn, {
                "registration": registration_id, "lock_after": lock_after, "at": at}) != 1:
            return False
        locked = self._conn.execute(select(_R.locked_at).where(_R.id == registration_id))
        return locked.scalar_one() is not None

    def unlock(self, registration_id: str) -> bool:
        return _UNLOCK.execute(self._conn, {"registration": registration_id}) == 1

    def cancel(self, registration_id: str) -> bool:
        return _CANCEL.execute(self._conn, {"registration": registration_id}) == 1

    def find(self, organization: str | None, status: str | None, limit: int,
             offset: int, after: tuple[datetime, str] | None = None) -> list[Registration]:
        r = registrations.c
        stmt = select(registrations).order_by(r.created_at, r.id)
        if after is not None:  # keyset: ix_registrations_org_created
            stmt = stmt.where(tuple_(r.created_at, r.id) > tuple_(
                literal(after[0], r.created_at.type), literal(after[1])))
        if organization is not None:
            stmt = stmt.where(registrations.c.organization_id == self._ids.id_of(
                self._conn, organizations, organization))
        if status is not None:
            stmt = stmt.where(registrations.c.status == status)
        stmt = stmt.limit(limit)
        return [self._registration(row) for row in self._conn.execute(
            stmt.offset(offset) if offset else stmt)]

    def _row(self, r: Registration) -> dict[str, Any]:
        return {
            "id": r.id, "organization_id": self._ids.id_of(self._conn, organizations, r.organization),
            "authority_id": self._ids.id_of(self._conn, authorities, r.authority),
            "profile": r.profile, "method": r.method.value,
            "subject": r.subject.rfc4514_string() if r.subject is not None else None,
            "sans": _SEPARATOR.join(format_san(n) for n in r.sans) if r.sans is not None else None,
            "identity_fingerprint": r.identity_fingerprint, "identity_issuer": r.identity_issuer,
            "identity_serial": r.identity_serial, "identity_key": r.identity_key,
            "secret_hash": r.secret_hash, "secret_sealed": r.secret_sealed,
            "status": r.status.value, "expires_at": r.expires_at, "created_at": r.created_at,
            "created_by": r.created_by, "consumed_at": r.consumed_at, "certificate": r.certificate,
            "manifest": r.manifest, "component_id": r.component_id,
            "attributes": json.dumps(r.attributes, sort_keys=True),
            "reference": r.reference, "uses_allowed": r.uses_allowed, "uses": r.uses,
            "failed_secrets": r.failed_secrets, "locked_at": r.locked_at,
        }

    def _registration(self, row: Row) -> Registration:  # type: ignore[type-arg]
        sans = None
        if row.sans is not None:
            sans = tuple(parse_san(s) for s in row.sans.split(_SEPARATOR) if s)
        return Registration(
            id=row.id, organization=self._ids.label_of(self._conn, organizations, row.organization_id),
            authority=self._ids.label_of(self._conn, authorities, row.authority_id),
            profile=row.profile, method=RegistrationMethod(row.method), expires_at=row.expires_at,
            created_at=row.created_at, created_by=row.created_by,
            subject=parse_subject(row.subject) if row.subject is not None else None, sans=sans,
            identity_fingerprint=row.identity_fingerprint, identity_issuer=row.identity_issuer,
            identity_serial=row.identity_serial, identity_key=row.identity_key,
            secret_hash=row.secret_hash, secret_sealed=row.secret_sealed,
            status=RegistrationStatus(row.status), consumed_at=row.consumed_at,
            certificate=row.certificate, manifest=row.manifest, component_id=row.component_id,
            attributes=json.loads(row.attributes), reference=row.reference,
            uses_allowed=row.uses_allowed, uses=row.uses,
            failed_secrets=row.failed_secrets, locked_at=row.locked_at,
        )


class SQLDeliveryRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, sender: str, recipient: str, delivery_id: str, direction: str,
            entries: int, at: datetime) -> bool:
        seen = self._conn.execute(select(deliveries.c.id).where(
            deliveries.c.sender == sender, deliveries.c.recipient == recipient,
            deliveries.c.delivery_id == delivery_id, deliveries.c.direction == direction)).first()
        if seen is not None:
            return False
        _ADD_DELIVERY.execute(self._conn, dict(
            sender=sender, recipient=recipient, delivery_id=delivery_id, direction=direction,
            entries=entries, created_at=at))
        return True

    def imported(self, recipient: str, limit: int,
                 before: int | None = None) -> list[ImportedDelivery]:
        # A row per manifest, not per entry: an organization's list stays short.
        query = select(deliveries).where(deliveries.c.recipient == recipient,
                                         deliveries.c.direction == "imported")
        if before is not None:
            query = query.where(deliveries.c.id < before)
        rows = self._conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit))
        return [ImportedDelivery(r.id, r.sender, r.delivery_id, r.entries, r.created_at)
                for r in rows]
