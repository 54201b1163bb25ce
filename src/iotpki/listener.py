"""The HTTP protocol both listeners run under uvicorn, with the limits of issue 15 items 2
and 3: bounded request heads, read timeouts and connection caps.

uvicorn's httptools protocol closes an idle keep-alive connection, but a connection that
sends half a request head, or a body that never ends, stays open for ever, and nothing caps
the head's size. Thousands of such connections starved OCSP. `GuardedHttpToolsProtocol`
adds, per worker process:

- a head timeout: the request line and headers must arrive within `header_timeout`
  seconds of the connection opening (or of the request's first byte on a kept-alive
  connection), else 408 and close (RFC 9110 §15.5.9);
- a body timeout: the body must arrive within `body_timeout` seconds after the head;
- a head size cap: more than `max_header_bytes` before the head ends gets 431 and close
  (RFC 6585 §5);
- connection caps: at most `max_connections_per_client` open connections from one client
  address (trusted reverse proxies are exempt), and at most `max_connections` per worker.
  At the global cap a new connection evicts the one that has waited longest for its
  request head; with none waiting it is refused. Refused and evicted connections get 503
  with Retry-After and are closed at once: each costs one accept and one write.

Limits are the settings' (`Settings.listener`, docs/security.md), handed to each worker
process by `iotpki serve`.
A TLS handshake happens before the protocol sees the connection: asyncio bounds it to
60 seconds.

With several workers, each worker process listens on a socket of its own bound with
SO_REUSEPORT (issue 21), so that the kernel spreads new connections over the workers by
hash; uvicorn's own multi-worker mode shares one listening socket, where the worker that
wakes first takes most connections (`serve_workers`). Where SO_REUSEPORT is missing, the
shared socket remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from iotpki.settings import ListenerLimits, worker_settings

PROTOCOL_CLASS = "iotpki.listener:GuardedHttpToolsProtocol"


@cache
def limits() -> ListenerLimits:
    """The process's limits, read once (uvicorn makes one protocol object per connection)."""
    return worker_settings().listener


class Admission:
    """Open connections of one worker process, in total and per client address, and the
    ones still waiting for their request head (oldest first)."""

    def __init__(self) -> None:
        self.total = 0
        self.per_client: Counter[str] = Counter()
        self.waiting: dict[GuardedHttpToolsProtocol, None] = {}  # insertion order: age

    def admit(self, client: str, limit: ListenerLimits) -> bool:
        if (client not in limit.exempt
                and self.per_client[client] >= limit.max_connections_per_client):
            return False
        if self.total >= limit.max_connections and not self._evict_oldest_waiting():
            return False
        self.total += 1
        self.per_client[client] += 1
        return True

    def _evict_oldest_waiting(self) -> bool:
        """At the global cap, the connection that has waited longest for its request head
        makes room: a flood of slow connections then churns itself out, while requests
        that arrive whole are served."""
        if not self.waiting:
            return False
        oldest = next(iter(self.waiting))
        oldest.evict()
        return True

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


ADMISSION = Admission()


def _status(code: int, reason: str, extra: str = "") -> bytes:
    # Canonical header names, as on every answer (iotpki.http_protocol).
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
            .encode("ascii"))


BUSY = _status(503, "Service Unavailable", "Retry-After: 1\r\n")
TIMEOUT = _status(408, "Request Timeout")
HEAD_TOO_LARGE = _status(431, "Request Header Fields Too Large")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head/body timeouts, a head size cap and connection
    caps (see the module docstring)."""

    _admitted_as: str | None = None
    _timer: asyncio.TimerHandle | None = None
    _in_head = True
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        client = self.client[0] if self.client else "-"
        self._limits = limits()
        if not ADMISSION.admit(client, self._limits):
            self._refuse(BUSY)
            return
        self._admitted_as = client
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._leave()
        super().connection_lost(exc)

    def evict(self) -> None:
        """Closed to make room for a new connection (global cap reached)."""
        self._leave()
        self._refuse(BUSY)

    def _leave(self) -> None:
        ADMISSION.waiting.pop(self, None)
        if self._admitted_as is not None:
            ADMISSION.release(self._admitted_as)
            self._admitted_as = None

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # The chunk may hold the head's end and body bytes; only a head still unfinished
        # after the whole chunk counts against the cap.
        if self._in_head and self._head_bytes > self._limits.max_header_bytes:
            self._refuse(HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # a new request on a kept-alive connection
            self._await_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        ADMISSION.waiting.pop(self, None)
        self._arm(self._limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the application runs as long as it needs; keep-alive is uvicorn's
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # idle keep-alive: evictable, uvicorn's timeout
            ADMISSION.waiting.pop(self, None)
            ADMISSION.waiting[self] = None

    def _await_head(self) -> None:
        self._in_head, self._head_bytes = True, 0
        ADMISSION.waiting.pop(self, None)  # to the end: the head's wait starts now
        ADMISSION.waiting[self] = None
        self._arm(self._limits.header_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        started = self.cycle is not None and self.cycle.response_started
        if started:
            self.transport.close()
        else:
            self._refuse(TIMEOUT)

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


# -- one listening socket per worker (SO_REUSEPORT) ----------------------------------------------

def reuseport_supported() -> bool:
    """The platform lets several sockets listen on one port, the kernel spreading
    connections over them (Linux 3.9 and later)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def hold_port(host: str, port: int) -> socket.socket:
    """For `iotpki serve`, once the port was found free: a socket bound with SO_REUSEPORT
    that never listens (so it receives no connections), kept while `serve` runs. Its workers
    (same user, SO_REUSEPORT) may bind beside it; anyone binding without SO_REUSEPORT, such
    as a second `iotpki serve`'s port check, gets EADDRINUSE. It has no SO_REUSEADDR:
    Linux lets two SO_REUSEADDR sockets share a port while neither listens."""
    holder = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except BaseException:
        holder.close()
        raise
    return holder


def bind_worker_socket(host: str, port: int) -> socket.socket:
    """In a worker process: its own socket on the shared port (uvicorn listens on it)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class WorkerSocket:
    """Stands for a listening socket in uvicorn's worker supervisor, which hands its
    sockets to each worker process by pickling them: unpickled in the worker, it is a new
    socket bound there (`bind_worker_socket`), one per worker instead of one shared."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return bind_worker_socket, (self.host, self.port)


def serve_workers(app: str, host: str, port: int, **options: Any) -> None:
    """`uvicorn.run(app, host=host, port=port, **options)` with `options["workers"]`
    processes, each listening on its own SO_REUSEPORT socket; uvicorn's supervisor starts,
    restarts and stops them (SIGTERM: graceful shutdown) as in its own multi-worker mode."""
    config = Config(app, host=host, port=port, **options)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[WorkerSocket(host, port)]).run()  # type: ignore[list-item]
