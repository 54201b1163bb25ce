"""Reads from a PostgreSQL read replica while it is fresh enough, from the primary otherwise.

A node given `IOTPKI_DATABASE_READ_URL` serves OCSP, CRLs and the API's listings from that
replica (docs/operations.md). Staleness is measured by WAL position, not by the replica's
last replay time (which grows while the primary is idle): every `check_every` seconds the
router reads the primary's WAL position (`pg_current_wal_lsn()`) and the replica's replayed
position (`pg_last_wal_replay_lsn()`). A transaction that committed before the primary's
position was read at time t ends before that position; once the replica has replayed it,
everything committed before t is visible there. The replica's staleness at any moment is
therefore `now - t` for the newest sample it has replayed, and it grows between checks on
its own. Reads go to the replica only while that staleness is within `max_lag`: a
revocation committed `max_lag` seconds ago is on the replica whenever the replica answers.
While the primary cannot be reached (a failover), nothing commits, and the replica answers
whatever its staleness: OCSP keeps serving.

Switching back from the primary must not go back in time (an OCSP cache refilled from a
replica that has not replayed what the primary already showed would keep a stale answer):
after any read from the primary, the replica is used again only once it has replayed the
primary's position sampled after those reads (`_floor`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

DEFAULT_MAX_LAG = 0.5  # s; with the OCSP poll (0.25 s) a revocation shows within 1 s
CHECK_EVERY = 0.1  # s between two measurements of the replica's position
SAMPLES = 64  # primary positions kept: more than max_lag / check_every
PRIMARY_POSITION = text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
# A replica replays; a server that is not in recovery (the read URL names a primary) is as
# fresh as itself. COALESCE evaluates its second argument only when the first is NULL.
REPLICA_POSITION = text("SELECT (COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn())"
                        " - '0/0'::pg_lsn)::bigint")


class ReplicaRouter:
    """Which engine a read-only unit of work uses now: the replica's or the primary's."""

    def __init__(self, primary: Engine, replica: Engine, max_lag: float = DEFAULT_MAX_LAG,
                 check_every: float = CHECK_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        self._check_every = min(check_every, max_lag / 4) if max_lag > 0 else check_every
        self._clock = clock
        self._lock = threading.Lock()  # the state below
        self._measuring = threading.Lock()  # one measurement at a time
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=SAMPLES)
        self._replayed: int | None = None  # the replica's position at the last check
        self._checked_at = float("-inf")
        self._floor = 0  # a position the replica must have replayed before it is used again
        self._primary_down = False  # the last check could not reach the primary
        self._primary_read = False  # a read went to the primary since the last check
        self.replica_reads = 0  # where reads went (tests, benchmarks)
        self.primary_reads = 0

    def engine(self) -> Engine:
        """The replica's engine if its staleness is within the bound, else the primary's."""
        if self._clock() - self._checked_at >= self._check_every:
            self.check()
        with self._lock:
            if not self._primary_read and self._fresh():
                self.replica_reads += 1
                return self.replica
            self._primary_read = True  # sticky until the next check moves the floor
            self.primary_reads += 1
            return self.primary

    def staleness(self) -> float | None:
        """Seconds of commits the replica may be missing now (None: unknown, not used)."""
        with self._lock:
            sample = self._newest_replayed()
            return None if sample is None else max(0.0, self._clock() - sample)

    def check(self) -> None:
        """Measure both positions (one query to each server). One thread measures; the
        others go on with the last measurement."""
        if not self._measuring.acquire(blocking=False):
            return
        try:
            self._measure()
        finally:
            self._measuring.release()

    def _measure(self) -> None:
        with self._lock:
            primary_read, self._primary_read = self._primary_read, False
        now = self._clock()
        primary = _position(self.primary, PRIMARY_POSITION)
        replayed = _position(self.replica, REPLICA_POSITION)
        with self._lock:
            self._checked_at = now
            self._replayed = replayed
            self._primary_down = primary is None
            if primary is not None:
                self._samples.append((now, primary))
                if primary_read:
                    self._floor = max(self._floor, primary)
            elif primary_read:
                self._primary_read = True  # the floor is not known: stay on the primary

    def _fresh(self) -> bool:
        if self._primary_down and self._replayed is not None:
            return True  # nothing commits while the primary is down: the replica is the best
        sample = self._newest_replayed()
        return (sample is not None and self._replayed is not None
                and self._replayed >= self._floor
                and self._clock() - sample <= self.max_lag)

    def _newest_replayed(self) -> float | None:
        """When the newest primary position the replica has replayed was sampled."""
        if self._replayed is None:
            return None
        for sampled_at, position in reversed(self._samples):
            if position <= self._replayed:
                return sampled_at
        return None


def _position(engine: Engine, query: object) -> int | None:
    """A WAL position in bytes; None if the server cannot be reached."""
    try:
        with engine.connect() as conn:
            value = conn.execute(query).scalar()  # type: ignore[call-overload]
            conn.rollback()
            return None if value is None else int(value)
    except DBAPIError as exc:
        log.warning("WAL position of %s not read: %s", engine.url.host or "?",
                    exc.__class__.__name__)
        return None
