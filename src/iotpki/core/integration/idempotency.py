"""Idempotency keys for creating requests (the `Idempotency-Key` header of HTTP APIs):
the first response to (principal, key) is kept; the same request again gets that same
response, a different request under the same key is refused.

The response is stored after the operation committed, in its own transaction: two
identical requests racing each other may both run, and then both answer with the first
one stored. Keys are scoped to a principal, so one integrator cannot replay another's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from iotpki.core.clock import Clock
from iotpki.core.errors import ConflictError

if TYPE_CHECKING:  # ports import StoredResponse from here
    from iotpki.core.ports import UnitOfWorkFactory

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    principal: str
    key: str
    request_hash: str  # SHA-256 over what identifies the request (method, path, body)
    status: int
    body: bytes
    created_at: datetime


class IdempotencyMismatchError(ConflictError):
    """The key was used before for a different request."""


class IdempotencyKeys:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def recall(self, principal: str, key: str, request_hash: str) -> StoredResponse | None:
        with self._uow() as uow:
            stored = uow.idempotency.get(principal, key)
        if stored is not None and stored.request_hash != request_hash:
            raise IdempotencyMismatchError(
                f"Idempotency-Key {key!r} was used for a different request")
        return stored

    def remember(self, principal: str, key: str, request_hash: str, status: int,
                 body: bytes) -> StoredResponse:
        """Store the response; if a concurrent twin stored one first, that one wins."""
        response = StoredResponse(principal, key, request_hash, status, body, self._clock.now())
        with self._uow() as uow:
            if uow.idempotency.add(response):
                uow.commit()
                return response
        first = self.recall(principal, key, request_hash)
        return first if first is not None else response
