"""Idempotency keys for creating requests (the `Idempotency-Key` header, an HTTP matter the
core does not know): the first response to (principal, key) is kept; the same request again
gets that same response, a different request under the same key is refused.

The response is stored after the operation committed, in its own transaction: two
identical requests racing each other may both run, and then both answer with the first
one stored. Keys are scoped to a principal, so one integrator cannot replay another's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from iotpki.core.clock import Clock
from iotpki.core.errors import ConflictError
from iotpki.core.ports import Transaction

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str  # SHA-256 over what identifies the request (method, path, body)
    status: int
    body: bytes


class IdempotencyRepository(Protocol):
    """The stored responses, keyed by (principal, key)."""

    def get(self, principal: str, key: str) -> tuple[str, int, bytes] | None:
        """(request hash, status, body) stored under the key, if any."""
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
    def __init__(self, uow: Callable[[], IdempotencyUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def recall(self, principal: str, key: str, request_hash: str) -> StoredResponse | None:
        with self._uow() as uow:
            row = uow.idempotency.get(principal, key)
        if row is None:
            return None
        stored = StoredResponse(*row)
        if stored.request_hash != request_hash:
            raise IdempotencyMismatchError(
                f"Idempotency-Key {key!r} was used for a different request")
        return stored

    def remember(self, principal: str, key: str, request_hash: str, status: int,
                 body: bytes) -> StoredResponse:
        """Store the response; if a concurrent twin stored one first, that one wins."""
        response = StoredResponse(request_hash, status, body)
        with self._uow() as uow:
            if uow.idempotency.add(principal, key, request_hash, status, body, self._clock.now()):
                uow.commit()
                return response
        first = self.recall(principal, key, request_hash)
        return first if first is not None else response
