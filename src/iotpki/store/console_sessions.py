"""Web console sessions (migration 0018): the token's hash, the principal, the CSRF token and
the expiry, shared by every worker and node (`core.integration.console_session`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select

from iotpki.core.integration.console_session import ConsoleSession
from iotpki.store.prepared import Prepared
from iotpki.store.schema import console_sessions

_COLUMNS = ("token_hash", "principal_id", "csrf_token", "via", "created_at", "expires_at")
_ADD = Prepared(console_sessions.insert().inline(), _COLUMNS)
_GET = Prepared(select(*(console_sessions.c[name] for name in _COLUMNS)).where(
    console_sessions.c.token_hash == bindparam("token_hash")))
_DELETE = Prepared(delete(console_sessions).where(
    console_sessions.c.token_hash == bindparam("token_hash")))
_PURGE = Prepared(delete(console_sessions).where(
    console_sessions.c.expires_at <= bindparam("now")))


class SQLConsoleSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, session: ConsoleSession) -> None:
        _ADD.execute(self._conn, {name: getattr(session, name) for name in _COLUMNS})

    def get(self, token_hash: str) -> ConsoleSession | None:
        row = _GET.first(self._conn, {"token_hash": token_hash})
        return ConsoleSession(*row) if row is not None else None

    def delete(self, token_hash: str) -> None:
        _DELETE.execute(self._conn, {"token_hash": token_hash})

    def purge(self, now: datetime) -> None:
        _PURGE.execute(self._conn, {"now": now})
