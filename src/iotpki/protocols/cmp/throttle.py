"""A budget of failed MAC checks per MAC reference and per client address (issue 15: CPU
exhaustion through MAC iteration counts).

Checking a PasswordBasedMac or PBMAC1 costs what the *client* chose (up to
`MAX_ITERATIONS` rounds), so whoever guesses secrets, or just sends expensive garbage for a
known reference, makes the server burn CPU. Every failed check is counted against the
reference (the registration the senderKID names) and against the client's address in a
sliding window; once either has spent its budget, requests for it are refused *before* any
key derivation until the window has moved on (RFC 9483 §3.6.4: an error message, failInfo
systemUnavail, "try again later", audited as every refusal). Successful checks cost the
client's own secret and are not counted.

The counts are the core's `FailureBudget` (`core/ra/failure_budget.py`), kept in the
database: every worker process of `iotpki serve` and every node share one budget, and a
restart does not reset it. A reference under attack is refused for its legitimate clients
too, for at most one window: the price of bounding the work.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from iotpki.core.ra.failure_budget import Throttled

WINDOW = timedelta(minutes=1)
PER_REFERENCE = 10  # failed MAC checks per reference per window
PER_ADDRESS = 20  # failed MAC checks per client address per window
LIMITS = {"reference": PER_REFERENCE, "address": PER_ADDRESS}


class FailureBudget(Protocol):
    """What the throttle needs from the core (`core.ra.failure_budget.FailureBudget`)."""

    def check(self, keys: Mapping[str, str], now: datetime) -> Throttled | None: ...

    def note_failure(self, keys: Mapping[str, str], now: datetime) -> None: ...


class MACThrottle:
    def __init__(self, budget: FailureBudget) -> None:
        self._budget = budget

    def check(self, reference: str, address: str, now: datetime) -> Throttled | None:
        """None if both may still fail a MAC check; else which one is throttled."""
        return self._budget.check(_keys(reference, address), now)

    def note_failure(self, reference: str, address: str, now: datetime) -> None:
        self._budget.note_failure(_keys(reference, address), now)


def _keys(reference: str, address: str) -> dict[str, str]:
    return {"reference": reference, "address": address[:255]}
