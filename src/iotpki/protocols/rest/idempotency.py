"""Idempotency keys for creating requests (the `Idempotency-Key` header, an HTTP matter the
core does not know): the first response to (principal, key) is kept; the same request again
gets that same response, a different request under the same key is refused.

The response is stored after the operation committed, in its own transaction: two
identical requests racing each other may both run, and then both answer with the first
one stored. Keys are scoped to a principal, so one integrator cannot replay another's.

A stored response may hold a secret (a registration's one-time secret). It is never kept
in clear: with a sealer (the key backend's authenticated encryption) the whole body is
stored sealed and replayed as it was; without one, every `secret` field is removed before
storing, and a replay says so (`Idempotent-Secrets-Withheld: true`). Keys expire after
`ttl` (24 hours): an expired key is forgotten and its response deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from iotpki.core.clock import Clock
from iotpki.core.errors import ConflictError
from iotpki.core.keyring import SecretSealer
from iotpki.core.ports import Transaction

MAX_KEY_LENGTH = 255
DEFAULT_TTL = timedelta(hours=24)
_SEALED = b"\x00sealed\x00"  # JSON never starts with NUL: these prefixes cannot collide
_REDACTED = b"\x00redacted\x00"
SECRET_FIELDS = frozenset({"secret", "challenge"})  # "challenge": a SCEP `id:secret`


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str  # SHA-256 over what identifies the request (method, path, body)
    status: int
    body: bytes
    secrets_withheld: bool = False  # the body's secrets were removed before storing


class IdempotencyRepository(Protocol):
    """The stored responses, keyed by (principal, key)."""

    def get(self, principal: str, key: str) -> tuple[str, int, bytes, datetime] | None:
        """(request hash, status, body, stored at) under the key, if any."""
        ...

    def purge(self, before: datetime) -> None:
        """Forget every response stored before `before`."""
        ...

    def add(self, principal: str, key: str, request_hash: str, status: int, body: bytes,
            at: datetime) -> bool:
        """False (and nothing written) if (principal, key) is stored already."""
        ...


class IdempotencyUnitOfWork(Transaction, Protocol):
    """The part of the store's transaction this adapter uses."""

    @property
    def idempotency(self) -> IdempotencyRepository: ...


class IdempotencyMismatchError(ConflictError):
    """The key was used before for a different request."""


class IdempotencyKeys:
    def __init__(self, uow: Callable[[], IdempotencyUnitOfWork], clock: Clock,
                 sealer: SecretSealer | None = None, ttl: timedelta = DEFAULT_TTL) -> None:
        self._uow = uow
        self._clock = clock
        self._sealer = sealer
        self._ttl = ttl

    def recall(self, principal: str, key: str, request_hash: str) -> StoredResponse | None:
        with self._uow() as uow:
            row = uow.idempotency.get(principal, key)
        if row is None or row[3] <= self._clock.now() - self._ttl:
            return None  # an expired key is forgotten (and purged by the next remember)
        stored = self._open(StoredResponse(row[0], row[1], row[2]))
        if stored.request_hash != request_hash:
            raise IdempotencyMismatchError(
                f"Idempotency-Key {key!r} was used for a different request")
        return stored

    def remember(self, principal: str, key: str, request_hash: str, status: int,
                 body: bytes) -> StoredResponse:
        """Store the response; if a concurrent twin stored one first, that one wins."""
        response = StoredResponse(request_hash, status, body)
        now = self._clock.now()
        with self._uow() as uow:
            uow.idempotency.purge(now - self._ttl)
            if uow.idempotency.add(principal, key, request_hash, status, self._protect(body),
                                   now):
                uow.commit()
                return response
        first = self.recall(principal, key, request_hash)
        return first if first is not None else response

    def _protect(self, body: bytes) -> bytes:
        if self._sealer is not None:
            return _SEALED + self._sealer.seal(body)
        withheld, cleaned = _without_secrets(json.loads(body))
        return _REDACTED + json.dumps(cleaned).encode() if withheld else body

    def _open(self, stored: StoredResponse) -> StoredResponse:
        body = stored.body
        if body.startswith(_SEALED):
            if self._sealer is None:  # sealed by a node that had a sealer; cannot replay
                raise ConflictError("the stored response is sealed and this node cannot "
                                    "unseal it; use a new Idempotency-Key")
            return StoredResponse(stored.request_hash, stored.status,
                                  self._sealer.unseal(body[len(_SEALED):]))
        if body.startswith(_REDACTED):
            return StoredResponse(stored.request_hash, stored.status, body[len(_REDACTED):],
                                  secrets_withheld=True)
        return stored


def _without_secrets(value: Any) -> tuple[bool, Any]:
    """(whether anything was removed, the value with every secret field set to null)."""
    if isinstance(value, list):
        results = [_without_secrets(v) for v in value]
        return any(r[0] for r in results), [r[1] for r in results]
    if isinstance(value, dict):
        withheld = False
        cleaned: dict[str, Any] = {}
        for name, item in value.items():
            if name in SECRET_FIELDS and item is not None:
                withheld, cleaned[name] = True, None
            else:
                removed, cleaned[name] = _without_secrets(item)
                withheld = withheld or removed
        return withheld, cleaned
    return False, value
