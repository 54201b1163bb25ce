"""Whether a pooled PostgreSQL connection is still alive when a unit of work takes it, with
a round trip only when there is a doubt (issue 21).

SQLAlchemy's pre-ping sends an empty query at every checkout: a CMP cr takes a connection
three times (its read units), so three of its round trips were pings. A connection that
was in use a moment ago and whose socket has nothing to read is alive for all the client
can know: a server that restarts, fails over or ends the session (`pg_terminate_backend`,
`idle_session_timeout`) sends its FATAL message and closes the socket, which makes it
readable. An idle connection has nothing else to receive (no LISTEN on these sessions).
So the ping is sent only when the socket is readable, or when the connection was idle for
`IDLE_PING_SECONDS` (a firewall that silently drops idle sessions closes nothing). A ping
that fails takes the connection out; one that failed on a lost server takes every pooled
connection out (as pre-ping does), and the checkout connects anew.

What this does not change: a server that vanishes without closing anything (a host cut
off) is found by the unit's first statement instead of the ping, after the same TCP
timeout.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError, InvalidatePoolError

IDLE_PING_SECONDS = 10.0
_USED_AT = "iotpki_used_at"  # connection record info: when the connection was last in use


def check_on_checkout(engine: Engine) -> None:
    """Test `engine`'s pooled connections as they are taken (instead of `pool_pre_ping`)."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _settled(dbapi_connection, record.info.get(_USED_AT)):
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, dbapi_connection, None)
            raise (InvalidatePoolError if lost else DisconnectionError)(
                f"the pooled connection failed its ping: {exc}") from exc


def _settled(dbapi_connection: Any, used_at: float | None) -> bool:
    """In use within `IDLE_PING_SECONDS`, open, and nothing waiting on its socket."""
    if used_at is None or time.monotonic() - used_at > IDLE_PING_SECONDS:
        return False
    if dbapi_connection.closed or dbapi_connection.broken:
        return False
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)  # POLLHUP and POLLERR are reported whatever the mask
