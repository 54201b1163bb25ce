"""The agent against the server's own applications in process: `ASGITransport` is an
agent `Transport` (`iotpki.agent.transport`) that hands each request to the ASGI
application its URL names (httpx's ASGI transport, no socket), and `in_process_servers`
gives the agent tests the same `Servers` view as the real server does, minus the socket.

Plain HTTP only: the listener applications are `app.http_app` (CMP, OCSP, CRLs). EST
authenticates with TLS client certificates, which only a real TLS handshake carries; the
agent's EST tests use the real server (`agent_server`)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx

from iotpki.agent.errors import TransportError
from iotpki.agent.transport import Answer
from iotpki.app import PKI, http_app
from tests.agent.conftest import Servers
from tests.est.conftest import EST

BASE = "http://pki.test"  # the URL the agent is configured with; never resolved


class ASGITransport:
    """A `Transport` over in-process ASGI applications, keyed by `scheme://host[:port]`."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._clients = {origin: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url=origin)
                         for origin, app in apps.items()}

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        origin = next((o for o in self._clients if url.startswith(o + "/")), None)
        if origin is None:
            raise TransportError(f"{url}: no in-process application there")
        client = self._clients[origin]
        answer = self._portal.call(partial(client.request, method, url.removeprefix(origin),
                                           content=body, headers=headers or {}))
        return Answer(answer.status_code, {k.lower(): v for k, v in answer.headers.items()},
                      answer.content)

    def close(self) -> None:
        """Connections are per request here: nothing to release (the agent calls this)."""

    def shutdown(self) -> None:
        for client in self._clients.values():
            self._portal.call(client.aclose)
        self._portal_context.__exit__(None, None, None)


@contextmanager
def in_process_servers(pki: PKI, directory: Path) -> Iterator[tuple[Servers, ASGITransport]]:
    """`Servers` (registrations, agent configurations) over `pki` with the plain-HTTP
    application in process, and the transport to give the agent (`build_agent`)."""
    transport = ASGITransport({BASE: http_app(pki, background=False)})
    try:
        view = EST(pki, directory, None)  # type: ignore[arg-type]  # no server process
        yield Servers(pki, view, BASE, "", directory / "devices"), transport
    finally:
        transport.shutdown()
