"""Web console sessions: a principal logged in to the console (with its API key or its TLS
client certificate) holds an opaque session token in a cookie; the store keeps only the
token's SHA-256, its expiry and the session's CSRF token, so every worker and node sees the
session and a logout ends it everywhere.

The CSRF token is the synchronizer token of the OWASP CSRF cheat sheet: one random value per
session, put in every form, compared in constant time on every state-changing request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.audit.ports import AuditRepository
from iotpki.core.clock import Clock
from iotpki.core.errors import AuthenticationError
from iotpki.core.integration.ports import ConsoleSessionRepository, PrincipalRepository
from iotpki.core.integration.principal import Principal
from iotpki.core.ports import Transaction

SESSION_LIFETIME = timedelta(hours=8)  # a working day; then log in again


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleSession:
    token_hash: str  # SHA-256 of the cookie's token, hex: the token itself is never stored
    principal_id: str
    csrf_token: str
    via: str  # how the principal logged in: "api-key" or "certificate"
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class OpenedSession:
    token: str  # for the cookie, given once
    session: ConsoleSession


@dataclass(frozen=True)
class SignedIn:
    session: ConsoleSession
    principal: Principal

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.session.csrf_token.encode())


class ConsoleUnitOfWork(Transaction, Protocol):
    @property
    def console_sessions(self) -> ConsoleSessionRepository: ...

    @property
    def principals(self) -> PrincipalRepository: ...

    @property
    def audit(self) -> AuditRepository: ...


class ConsoleSessions:
    def __init__(self, uow: Callable[[], ConsoleUnitOfWork], clock: Clock,
                 lifetime: timedelta = SESSION_LIFETIME) -> None:
        self._uow = uow
        self._clock = clock
        self._lifetime = lifetime

    def open(self, principal: Principal, via: str) -> OpenedSession:
        """A new session for an authenticated principal; expired sessions are purged."""
        now = self._clock.now()
        token = secrets.token_urlsafe(32)
        session = ConsoleSession(hash_session_token(token), principal.id,
                                 secrets.token_urlsafe(32), via, now, now + self._lifetime)
        with self._uow() as uow:
            uow.console_sessions.purge(now)
            uow.console_sessions.add(session)
            append_audit(uow.audit, now, AuditRecord(
                "console.login", "success", principal.actor, principal.id,
                {"organization": principal.organization, "via": via}))
            uow.commit()
        return OpenedSession(token, session)

    def refuse(self, action: str, actor: str, target: str, details: dict[str, str]) -> None:
        """Audit a refused login or request (`console.login`, `console.request`); the
        presented credential or token is never logged."""
        with self._uow() as uow:
            append_audit(uow.audit, self._clock.now(), AuditRecord(
                action, "refused", actor, target, details))
            uow.commit()

    def resolve(self, token: str) -> SignedIn:
        """The session of a cookie's token and its principal, if both are still valid."""
        now = self._clock.now()
        with self._uow() as uow:
            session = uow.console_sessions.get(hash_session_token(token))
            principal = uow.principals.get(session.principal_id) if session else None
        if session is None or principal is None or session.expires_at <= now:
            raise AuthenticationError("no such session, or it has expired: log in again")
        if not principal.active:
            raise AuthenticationError("the principal of this session was revoked")
        return SignedIn(session, principal)

    def close(self, signed_in: SignedIn) -> None:
        """Log out: the session is deleted, so its cookie no longer works anywhere."""
        now = self._clock.now()
        principal = signed_in.principal
        with self._uow() as uow:
            uow.console_sessions.delete(signed_in.session.token_hash)
            append_audit(uow.audit, now, AuditRecord(
                "console.logout", "success", principal.actor, principal.id,
                {"organization": principal.organization}))
            uow.commit()
