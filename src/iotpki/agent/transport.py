"""How the agent talks HTTP: the `Transport` protocol its EST, CMP and OCSP clients use,
and `HTTPTransport`, a small HTTP/1.1 client on `http.client` (stdlib: a device installs
nothing more). Tests pass another `Transport` to run the agent against the server's
applications in process (`tests/agent/inprocess.py`).

Connections are kept alive per thread and per (scheme, host, port, TLS context), so the
fleet simulator's threads each reuse theirs; a request on a connection the server closed
is retried once on a new one.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

from iotpki.agent.errors import TransportError

MAX_ANSWER = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Transport(Protocol):
    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        """One request; `tls` is the context for an https URL (trust, client certificate).
        Raises `TransportError` when no answer comes."""
        ...

    def close(self) -> None:
        """Release connections (no request is running)."""
        ...


class HTTPTransport:
    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"not an http(s) URL: {url!r}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            connection = self._connection(parts, tls)
            try:
                connection.request(method, path or "/", body=body, headers=headers or {})
                response = connection.getresponse()
                data = response.read(MAX_ANSWER + 1)
                if len(data) > MAX_ANSWER:
                    raise TransportError(f"answer from {url} is larger than {MAX_ANSWER} bytes")
                answer = Answer(response.status,
                                {k.lower(): v for k, v in response.getheaders()}, data)
                if response.will_close:
                    self._drop(parts, tls)
                return answer
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(parts, tls)
                if attempt == 2:
                    raise TransportError(f"{url}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts, tls)
                raise TransportError(f"{url}: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connections of every thread (call when no request is running)."""
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
        self._local.connections = {}

    def _key(self, parts: urllib.parse.SplitResult,
             tls: ssl.SSLContext | None) -> tuple[str, str, int | None, int]:
        return parts.scheme, parts.hostname or "", parts.port, id(tls)

    def _connection(self, parts: urllib.parse.SplitResult,
                    tls: ssl.SSLContext | None) -> http.client.HTTPConnection:
        connections = self._local.__dict__.setdefault("connections", {})
        key = self._key(parts, tls)
        if key not in connections:
            if parts.scheme == "https":
                connections[key] = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=self.timeout,
                    context=tls or ssl.create_default_context())
            else:
                connections[key] = http.client.HTTPConnection(
                    parts.hostname or "", parts.port, timeout=self.timeout)
            with self._lock:
                self._all.append(connections[key])
        connection: http.client.HTTPConnection = connections[key]
        return connection

    def _drop(self, parts: urllib.parse.SplitResult, tls: ssl.SSLContext | None) -> None:
        connection = self._local.__dict__.get("connections", {}).pop(self._key(parts, tls), None)
        if connection is not None:
            connection.close()
