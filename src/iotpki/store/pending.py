"""Pending-request repository (manual approval)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.ra.pending import PendingRequest, PendingStatus
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import approval_challenges, authorities, pending_requests
from iotpki.store.schema import authorities as authorities_table

# Writes (store.prepared: the one write path).
_ADD = Prepared(pending_requests.insert().inline(), (
    "id", "authority_id", "profile", "csr", "requester", "presented", "status", "created_at",
    "request_key"))
_DECIDE = Prepared(update(pending_requests).where(
    pending_requests.c.id == bindparam("request"),
    pending_requests.c.status == PendingStatus.PENDING.value,
).values(status=bindparam("status"), decided_at=bindparam("at"), decided_by=bindparam("by"),
         certificate=bindparam("certificate"), reason=bindparam("reason")))
_FORGET_CHALLENGES = Prepared(delete(approval_challenges).where(
    approval_challenges.c.challenged_at < bindparam("before")))
_ADD_CHALLENGE = Prepared(approval_challenges.insert().inline(), (
    "authority_id", "profile", "request_key", "challenged_at"))


class SQLPendingRequestRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, pending: PendingRequest) -> bool:
        try:
            with self._conn.begin_nested():
                _ADD.execute(self._conn, dict(
                    id=pending.id,
                    authority_id=self._ids.id_of(self._conn, authorities, pending.authority),
                    profile=pending.profile, csr=pending.csr, requester=pending.requester,
                    presented=pending.presented, status=pending.status.value,
                    created_at=pending.created_at, request_key=pending.request_key))
        except IntegrityError:
            return False  # a concurrent repeat queued the same subject and key first
        return True

    def get(self, request_id: str) -> PendingRequest | None:
        row = self._conn.execute(
            select(pending_requests).where(pending_requests.c.id == request_id)).first()
        return self._pending(row) if row is not None else None

    def decide(self, request_id: str, status: str, at: datetime, by: str,
               certificate: str | None, reason: str | None) -> bool:
        return _DECIDE.execute(self._conn, {
            "request": request_id, "status": status, "at": at, "by": by,
            "certificate": certificate, "reason": reason}) == 1

    def find(self, status: str | None, limit: int, offset: int,
             authorities: Sequence[str] | None = None) -> list[PendingRequest]:
        stmt = select(pending_requests).order_by(pending_requests.c.created_at)
        if status is not None:
            stmt = stmt.where(pending_requests.c.status == status)
        if authorities is not None:
            stmt = stmt.where(pending_requests.c.authority_id.in_(
                [self._ids.id_of(self._conn, authorities_table, a) for a in authorities]))
        return [self._pending(r) for r in self._conn.execute(stmt.limit(limit).offset(offset))]

    def count_pending(self, authority: str, profile: str) -> int:
        stmt = select(func.count()).select_from(pending_requests).where(
            pending_requests.c.status == "pending",
            pending_requests.c.authority_id == self._ids.id_of(self._conn, authorities, authority),
            pending_requests.c.profile == profile)
        return int(self._conn.execute(stmt).scalar_one())

    def for_request(self, authority: str, profile: str, request_key: str) -> PendingRequest | None:
        row = self._conn.execute(select(pending_requests).where(
            pending_requests.c.authority_id == self._ids.id_of(self._conn, authorities, authority),
            pending_requests.c.profile == profile,
            pending_requests.c.request_key == request_key,
        ).order_by(pending_requests.c.created_at.desc()).limit(1)).first()
        return self._pending(row) if row is not None else None

    def note_challenge(self, authority: str, profile: str, request_key: str, at: datetime,
                       forget_before: datetime) -> None:
        _FORGET_CHALLENGES.execute(self._conn, {"before": forget_before})
        _ADD_CHALLENGE.execute(self._conn, dict(
            authority_id=self._ids.id_of(self._conn, authorities, authority), profile=profile,
            request_key=request_key, challenged_at=at))

    def challenged(self, authority: str, profile: str, request_key: str,
                   since: datetime) -> bool:
        row = self._conn.execute(select(approval_challenges.c.id).where(
            approval_challenges.c.authority_id == self._ids.id_of(self._conn, authorities,
                                                                  authority),
            approval_challenges.c.profile == profile,
            approval_challenges.c.request_key == request_key,
            approval_challenges.c.challenged_at >= since).limit(1)).first()
        return row is not None

    def _pending(self, row: Row) -> PendingRequest:  # type: ignore[type-arg]
        return PendingRequest(
            id=row.id, authority=self._ids.label_of(self._conn, authorities, row.authority_id),
            profile=row.profile, csr=row.csr, requester=row.requester,
            created_at=row.created_at, presented=row.presented,
            status=PendingStatus(row.status), decided_at=row.decided_at,
            decided_by=row.decided_by, certificate=row.certificate, reason=row.reason,
            request_key=row.request_key)
