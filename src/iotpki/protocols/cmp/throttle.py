"""A budget of failed MAC checks per MAC reference and per client address (issue 15: CPU
exhaustion through MAC iteration counts).

Checking a PasswordBasedMac or PBMAC1 costs what the *client* chose (up to
`MAX_ITERATIONS` rounds), so whoever guesses secrets, or just sends expensive garbage for a
known reference, makes the server burn CPU. Every failed check is counted against the
reference (the senderKID) and against the client's address in a sliding window; once
either has spent its budget, requests for it are refused *before* any key derivation until
the window has moved on (RFC 9483 §3.6.4: an error message, failInfo systemUnavail, "try
again later", audited as every refusal). Successful checks cost the client's own secret
and are not counted.

The counts are kept in this process's memory: each worker process, and each node, has its
own budget, and a restart forgets them. That bounds the cost per worker, which is what
matters for CPU; it is not a lockout policy for secrets (one-time secrets are random and
single-use, and reusable ones can be cancelled). A reference under attack is refused for
its legitimate clients too, for at most one window: the price of bounding the work.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)
PER_REFERENCE = 10  # failed MAC checks per reference per window
PER_ADDRESS = 20  # failed MAC checks per client address per window
MAX_TRACKED = 100_000  # keys remembered; the oldest are forgotten beyond this


@dataclass(frozen=True)
class Throttled:
    """Refused: `key` ("reference" or "address") spent its budget until `until`."""

    key: str
    until: datetime


class MACThrottle:
    def __init__(self, per_reference: int = PER_REFERENCE, per_address: int = PER_ADDRESS,
                 window: timedelta = WINDOW) -> None:
        self._limits = {"reference": per_reference, "address": per_address}
        self._window = window
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def check(self, reference: str, address: str, now: datetime) -> Throttled | None:
        """None if both may still fail a MAC check; else which one is throttled."""
        with self._lock:
            for kind, key in (("reference", reference), ("address", address)):
                failures = self._recent((kind, key), now)
                if failures is not None and len(failures) >= self._limits[kind]:
                    return Throttled(kind, failures[0] + self._window)
        return None

    def note_failure(self, reference: str, address: str, now: datetime) -> None:
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_oldest()
            for key in (("reference", reference), ("address", address)):
                self._failures.setdefault(key, deque()).append(now)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] + self._window <= now:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _forget_oldest(self) -> None:
        """Bounded memory under a flood of distinct references or addresses."""
        for key in list(self._failures)[:MAX_TRACKED // 10]:
            del self._failures[key]
