"""Group commit: the write units of work of one server process share one database
transaction and one COMMIT (issue 21).

A writer waits for its turn in the kernel (a mutex; across processes on SQLite an `flock`
on `<database>.writer`), never in SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms
between retries. Its unit of work runs in a SAVEPOINT of the group's transaction: a unit
that fails or does not commit rolls back to its savepoint and leaves the others' work
alone. The first unit of a transaction has no others' work to keep and runs without a
SAVEPOINT (on PostgreSQL two round trips fewer per group): if it fails, the transaction is
rolled back whole and the next unit begins a new one. A unit that committed (RELEASE)
hands the turn to the next writer already waiting and sleeps until the group's COMMIT; the
last unit of a group (nobody else waiting, or `MAX_GROUP` units in it) commits for all. So
the transactions waiting at one moment share one COMMIT — one fsync with
`synchronous=FULL`, and on PostgreSQL one lock of the audit head — and every unit returns,
and its answer is sent, only after the COMMIT that made its work durable. If that COMMIT
fails, every unit of the group raises its error.

Rows every unit moves (the audit chain's head) are moved once per group: a unit keeps the
new value in `shared` and `defer`s the write, which runs once before the COMMIT. On
PostgreSQL the first unit's `SELECT … FOR UPDATE` of the head is then the group's only one,
and other nodes queue once per group, not once per request. A unit that rolls back to its
savepoint restores `shared` and the deferred writes as they were when it began (`mark`).
Rows that nothing reads before the COMMIT (audit entries, events) are deferred too
(`append`): on PostgreSQL the deferred writes and the COMMIT are one pipeline, one round
trip for the group (`_commit`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction

Deferred = Callable[[Connection], None]

MAX_GROUP = 64  # units per COMMIT at most: a group must not hold the lock unbounded
WAIT_SECONDS = 120.0  # a unit whose group never commits raises instead of hanging


class GroupCommitError(RuntimeError):
    """The group this unit's work belonged to was not committed."""


class GroupCommit:
    def __init__(self, engine: Engine, lock_path: Path | None = None,
                 max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._lock_path = lock_path
        self._max_group = max_group
        self._turn = threading.Lock()  # the one writer of this process at a time
        self._state = threading.Condition()
        self._waiting = 0  # units waiting for the turn
        self._generation = 0  # the group being filled
        self._outcomes: dict[int, BaseException | None] = {}  # groups ended: their error
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._members = 0  # units of the open group that committed their savepoint
        self._lock_fd: int | None = None
        self.shared: dict[str, Any] = {}  # values the open group's units share (audit head)
        self._deferred: dict[str, Deferred] = {}  # writes run once before the COMMIT
        self._appended = itertools.count()  # keys of `append`'s writes

    # -- a unit's turn ----------------------------------------------------------------------

    def enter(self) -> Connection:
        """Wait for the turn (in the kernel); the connection whose transaction the unit
        joins (begun here if no group is open)."""
        with self._state:
            self._waiting += 1
            self._state.notify_all()
        self._turn.acquire()
        with self._state:
            self._waiting -= 1
        try:
            if self._tx is None:
                self._begin()
            assert self._conn is not None
            return self._conn
        except BaseException:
            self._end_group(None)
            self._turn.release()
            raise

    def leave(self, committed: bool) -> int | None:
        """The unit's savepoint has ended (RELEASE if `committed`, else rolled back). Ends
        the group if no other writer waits (or it is full) and hands the turn on. Returns
        the group to wait for, or None when the unit wrote nothing."""
        generation = self._generation
        if committed:
            self._members += 1
        try:
            with self._state:
                last = self._waiting == 0
            if last or self._members >= self._max_group:
                self._end_group(None)
        finally:
            self._turn.release()
        return generation if committed else None

    def holds_work(self) -> bool:
        """Whether the open transaction holds a unit's work (a unit committed into it). The
        unit entering an empty one needs no SAVEPOINT (two round trips on PostgreSQL): if
        it fails, `discard` rolls the transaction back whole."""
        return self._members > 0

    def discard(self) -> None:
        """Roll back the open transaction, which holds the work of the unit leaving alone
        (it entered with no `holds_work`); the next unit begins a new one."""
        assert self._members == 0, "the group's committed units would be lost"
        self._end_group(None)

    def append(self, write: Deferred) -> None:
        """Run `write` before the open group's COMMIT, after the writes deferred before it:
        rows a unit inserts and nobody reads before the COMMIT (audit entries, events).
        Their statements then cost no round trip of their own on PostgreSQL (`_commit`);
        an error in one fails the group, as its COMMIT failing would."""
        self._deferred[f"#{next(self._appended)}"] = write

    def defer(self, key: str, write: Deferred) -> None:
        """Run `write` once before the open group's COMMIT; a later `write` for the same
        `key` replaces it (the last value of a shared row is the one written). It must not
        read its statements' results: on PostgreSQL it runs in a pipeline (`_commit`)."""
        self._deferred[key] = write

    def mark(self) -> tuple[dict[str, Any], dict[str, Deferred]]:
        """The shared state as a unit begins, for `restore` if its savepoint rolls back."""
        return dict(self.shared), dict(self._deferred)

    def restore(self, mark: tuple[dict[str, Any], dict[str, Deferred]]) -> None:
        self.shared, self._deferred = dict(mark[0]), dict(mark[1])

    def abandon(self, error: BaseException) -> None:
        """The unit's connection failed under it: the open group cannot commit."""
        self._end_group(error)
        self._turn.release()

    def wait(self, generation: int) -> None:
        """Sleep until group `generation` ended; raise if it was not committed."""
        with self._state:
            ended = self._state.wait_for(lambda: generation in self._outcomes, WAIT_SECONDS)
            error = self._outcomes.get(generation) if ended else GroupCommitError(
                f"the group commit of this write did not end in {WAIT_SECONDS:.0f} s")
        if error is not None:
            raise GroupCommitError("the transaction this write belonged to failed") from error

    def close(self) -> None:
        with self._turn:
            self._end_group(GroupCommitError("the database was closed"))
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- the group's transaction ------------------------------------------------------------

    def _begin(self) -> None:
        if self._lock_path is not None:  # other processes' writers: wait in the kernel
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            self._conn = self._engine.connect()
        self._tx = self._conn.begin()

    def _end_group(self, error: BaseException | None) -> None:
        """COMMIT the open group (ROLLBACK if it has no member or `error`), then wake its
        units. Called with the turn held."""
        tx, members, generation = self._tx, self._members, self._generation
        deferred = list(self._deferred.values())
        self._tx, self._members, self.shared, self._deferred = None, 0, {}, {}
        if tx is not None:
            try:
                if members and error is None:
                    assert self._conn is not None
                    _commit(self._conn, tx, deferred)
                else:
                    tx.rollback()
            except BaseException as exc:  # the units learn it; the connection is redone
                error = exc
                self._discard_connection()
            finally:
                self._unlock()
        elif self._lock_fd is not None:
            self._unlock()
        if members:
            with self._state:
                self._outcomes[generation] = error
                self._outcomes.pop(generation - 1000, None)  # old outcomes nobody reads
                self._generation = generation + 1
                self._state.notify_all()

    def _discard_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _commit(conn: Connection, tx: RootTransaction, deferred: list[Deferred]) -> None:
    """The deferred writes, then COMMIT. On PostgreSQL in one psycopg pipeline, one round
    trip instead of one per statement: their results are not read, an error in any of them
    is raised as the pipeline ends, with the transaction left uncommitted (the server skips
    the COMMIT after it), and the pipeline ends once the COMMIT's answer came back, that is
    once the group's work is durable (`synchronous_commit = on`). SQLAlchemy's commit then
    finds the session out of its transaction and sends nothing."""
    dbapi_connection: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        cursor = dbapi_connection.cursor()
        try:
            with dbapi_connection.pipeline():
                for write in deferred:
                    write(conn)
                cursor.execute("COMMIT", prepare=False)
            ended = cursor.statusmessage
        finally:
            cursor.close()
        # A transaction a statement had failed in ends with ROLLBACK, without an error: no
        # unit of the group may then be told its work was stored.
        if ended != "COMMIT":
            raise GroupCommitError(f"the group's transaction ended with {ended}, not COMMIT")
    else:
        for write in deferred:
            write(conn)
    tx.commit()


def lock_path_for(url: Any) -> Path | None:
    """`<database>.writer` beside a SQLite file; None for other databases."""
    database = getattr(url, "database", None)
    if getattr(url, "get_backend_name", lambda: "")() != "sqlite" or not database \
            or database == ":memory:":
        return None
    return Path(f"{database}.writer")
