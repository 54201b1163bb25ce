"""Principal and idempotency-key repositories (migration 0006)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.errors import ConflictError
from iotpki.core.integration.principal import Principal, PrincipalKind, Role
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import idempotency_keys, organizations, principals

# Prepared (store.prepared): every issuance checks that its subject is no principal's.
_SUBJECT_RESERVED = Prepared(select(principals.c.id).where(
    principals.c.certificate_subject == bindparam("subject"),
    principals.c.certificate_authority == bindparam("authority"),
    principals.c.revoked_at.is_(None)).limit(1))

# Writes (store.prepared: the one write path).
_ADD = Prepared(principals.insert().inline(), (
    "id", "role", "name", "organization_id", "kind", "key_hash", "certificate_fingerprint",
    "certificate_subject", "certificate_authority", "created_at", "created_by", "revoked_at"))
_REVOKE = Prepared(update(principals).where(principals.c.id == bindparam("principal"))
                   .values(revoked_at=bindparam("at")))
_PURGE_IDEMPOTENCY = Prepared(delete(idempotency_keys).where(
    idempotency_keys.c.created_at < bindparam("before")))
_ADD_IDEMPOTENCY = Prepared(idempotency_keys.insert().inline(), (
    "principal", "key", "request_hash", "status", "body", "created_at"))


class SQLPrincipalRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, principal: Principal) -> None:
        try:
            _ADD.execute(self._conn, dict(
                id=principal.id, role=principal.role.value, name=principal.name,
                organization_id=self._ids.id_of(self._conn, organizations, principal.organization),
                kind=principal.kind.value, key_hash=principal.key_hash,
                certificate_fingerprint=principal.certificate_fingerprint,
                certificate_subject=principal.certificate_subject,
                certificate_authority=principal.certificate_authority,
                created_at=principal.created_at, created_by=principal.created_by,
                revoked_at=principal.revoked_at))
        except IntegrityError as exc:
            raise ConflictError(f"principal {principal.id} exists already") from exc

    def get(self, principal_id: str) -> Principal | None:
        row = self._conn.execute(select(principals).where(principals.c.id == principal_id)).first()
        return self._principal(row) if row is not None else None

    def for_certificate(self, fingerprint: str, subject: str) -> list[Principal]:
        c = principals.c
        rows = self._conn.execute(select(principals).where(
            or_(c.certificate_fingerprint == fingerprint, c.certificate_subject == subject))
            .order_by(c.created_at))
        return [self._principal(r) for r in rows]

    def subject_reserved(self, subject: str, authority: str) -> bool:
        return _SUBJECT_RESERVED.first(self._conn, {"subject": subject,
                                                    "authority": authority}) is not None

    def list(self, organization: str | None) -> list[Principal]:
        stmt = select(principals).order_by(principals.c.created_at, principals.c.id)
        if organization is not None:
            stmt = stmt.where(principals.c.organization_id == self._ids.id_of(
                self._conn, organizations, organization))
        return [self._principal(r) for r in self._conn.execute(stmt)]

    def revoke(self, principal_id: str, at: datetime) -> None:
        _REVOKE.execute(self._conn, {"principal": principal_id, "at": at})

    def _principal(self, row: Row) -> Principal:  # type: ignore[type-arg]
        return Principal(
            id=row.id, organization=self._ids.label_of(self._conn, organizations,
                                                       row.organization_id),
            role=Role(row.role), name=row.name, kind=PrincipalKind(row.kind),
            created_at=row.created_at, created_by=row.created_by, key_hash=row.key_hash,
            certificate_fingerprint=row.certificate_fingerprint,
            certificate_subject=row.certificate_subject,
            certificate_authority=row.certificate_authority, revoked_at=row.revoked_at)


class SQLIdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    """Stored HTTP responses for the REST adapter's idempotency keys (plain values: the
    response's meaning is the adapter's)."""

    def get(self, principal: str, key: str) -> tuple[str, int, bytes, datetime] | None:
        c = idempotency_keys.c
        row = self._conn.execute(select(c.request_hash, c.status, c.body, c.created_at).where(
            c.principal == principal, c.key == key)).first()
        return None if row is None else (row.request_hash, row.status, row.body, row.created_at)

    def purge(self, before: datetime) -> None:
        _PURGE_IDEMPOTENCY.execute(self._conn, {"before": before})

    def add(self, principal: str, key: str, request_hash: str, status: int, body: bytes,
            at: datetime) -> bool:
        try:
            # A savepoint: on PostgreSQL a failed INSERT would abort the whole transaction.
            with self._conn.begin_nested():
                _ADD_IDEMPOTENCY.execute(self._conn, dict(
                    principal=principal, key=key, request_hash=request_hash, status=status,
                    body=body, created_at=at))
        except IntegrityError:
            return False
        return True
