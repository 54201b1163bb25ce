"""Throttling secret guesses (issue 15 item 10).

A one-time secret is ≥ 128 random bits, so guessing it is hopeless, but every guess costs a
PBKDF2 derivation and an audit row. Two limits apply to the secret enrollment method:

- per registration: after `lock_after` wrong secrets the registration is locked (in the
  database, so every node sees it); even the right secret is then refused until an
  operator unlocks it (`iotpki registration unlock`, `POST /registrations/{id}/unlock`).
  The lock and the unlock are audited.
- per client (address, as the adapter reports it): more than `per_client` wrong secrets
  within `window` refuse that client's secret requests (`too-many-attempts`) until the
  window has passed. This count lives in the process (a short-lived rate, not a record).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R

MAX_CLIENTS = 100_000  # clients remembered at most; the oldest are forgotten first


@dataclass(frozen=True)
class GuessLimits:
    lock_after: int = 5  # wrong secrets that lock a registration
    per_client: int = 10  # wrong secrets one client may send within `window`
    window: timedelta = timedelta(minutes=1)


class SecretRefusedError(PolicyError):
    """A wrong secret (or unknown registration); `registration` is the id when it exists."""

    def __init__(self, registration: str | None) -> None:
        super().__init__(R.BAD_SECRET, "unknown registration or wrong secret")
        self.registration = registration


class ClientRate:
    """Events per client within a sliding window (thread-safe, bounded memory): wrong
    secrets, manual-approval submissions."""

    def __init__(self, per_client: int, window: timedelta, what: str) -> None:
        self._per_client = per_client
        self._window = window
        self._what = what
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def check(self, client: str | None, now: datetime) -> None:
        """Raise `PolicyError(too-many-attempts)` while `client` is over its rate."""
        if client is None:
            return
        with self._lock:
            recent = self._recent(client, now)
            if recent is not None and len(recent) >= self._per_client:
                retry = int((recent[0] + self._window - now).total_seconds()) + 1
                raise PolicyError(R.TOO_MANY_ATTEMPTS, f"too many {self._what} from this "
                                  f"client; try again in {retry} s")

    def note(self, client: str | None, now: datetime) -> None:
        if client is None:
            return
        with self._lock:
            recent = self._recent(client, now)
            if recent is None:
                if len(self._failures) >= MAX_CLIENTS:
                    self._failures.pop(next(iter(self._failures)))
                recent = self._failures[client] = deque()
            recent.append(now)

    def _recent(self, client: str, now: datetime) -> deque[datetime] | None:
        recent = self._failures.get(client)
        if recent is None:
            return None
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if not recent:
            del self._failures[client]
            return None
        return recent
