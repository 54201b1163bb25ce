"""The expiry monitor's queries: certificates inside a renewal window, and the notices
already sent (one per certificate, whatever the number of runs and nodes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.store.certificates import SQLCertificateRepository
from iotpki.store.ids import IdCache
from iotpki.store.schema import certificates, expiry_notices

C, N = certificates.c, expiry_notices.c


class SQLExpiryRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._certificates = SQLCertificateRepository(conn, ids)

    def candidates(self, profile: str, expires_before: datetime, now: datetime,
                   limit: int) -> list[CertificateRecord]:
        rows = self._conn.execute(
            select(certificates).outerjoin(expiry_notices, N.fingerprint == C.fingerprint)
            .where(C.profile == profile, C.status == CertificateStatus.GOOD.value,
                   C.not_after > now, C.not_after < expires_before, N.fingerprint.is_(None))
            .order_by(C.not_after, C.fingerprint).limit(limit)).all()
        return [self._certificates.record(r) for r in rows]

    def note(self, fingerprint: str, at: datetime) -> bool:
        # INSERT ... ON CONFLICT DO NOTHING: a second node noting the same certificate leaves
        # its transaction usable (a failed INSERT would abort it on PostgreSQL).
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(expiry_notices).values(
            fingerprint=fingerprint, noticed_at=at).on_conflict_do_nothing().returning(
            N.fingerprint)  # rowcount is not reliable here with psycopg: a row back means new
        return self._conn.execute(statement).first() is not None
