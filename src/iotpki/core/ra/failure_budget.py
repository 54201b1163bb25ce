"""A budget of failed credential checks per key, in a sliding window, kept in the database so
that every worker process of `iotpki serve` and every node share it (issue 15: CPU
exhaustion through client-chosen MAC iteration counts; issue 13 item 5).

A key is a (scope, value) pair: the CMP adapter counts each failed MAC check against the
registration it names ("reference") and the client's address ("address"). Once a key has
spent its budget within the window, `check` names it and when the budget frees again;
failures older than the window no longer count and are pruned as new ones are noted.

Kept in memory per process, a budget of N would be N per worker: `serve --workers 4` would
let a client fail 4N checks per window, and a restart would forget them. In the database
each failed check costs one insert, and each checked request one indexed count per key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from iotpki.core.ports import Transaction
from iotpki.core.ra.ports import FailedCheckRepository

RETENTION = timedelta(hours=1)  # failures older than this are pruned (the window is shorter)


class FailedCheckUnitOfWork(Transaction, Protocol):
    @property
    def failed_checks(self) -> FailedCheckRepository: ...


@dataclass(frozen=True)
class Throttled:
    """Refused: the key of `scope` spent its budget until `until`."""

    scope: str
    until: datetime


class FailureBudget:
    def __init__(self, uow: Callable[[], FailedCheckUnitOfWork], limits: Mapping[str, int],
                 window: timedelta,
                 reads: Callable[[], FailedCheckUnitOfWork] | None = None) -> None:
        self._uow = uow
        self._reads = reads or uow  # `check` only reads (SQLite: no write lock for it)
        self._limits = dict(limits)  # failures allowed per window, by scope
        self._window = window

    def check(self, keys: Mapping[str, str], now: datetime) -> Throttled | None:
        """None if every key (scope → value) may still fail; else the first that may not."""
        since = now - self._window
        with self._reads() as uow:
            for scope, key in keys.items():
                count, oldest = uow.failed_checks.since(scope, key, since)
                if count >= self._limits[scope] and oldest is not None:
                    return Throttled(scope, oldest + self._window)
        return None

    def note_failure(self, keys: Mapping[str, str], now: datetime) -> None:
        with self._uow() as uow:
            for scope, key in keys.items():
                uow.failed_checks.add(scope, key, now)
            uow.failed_checks.prune(now - max(RETENTION, self._window))
            uow.commit()
