"""CMC (RFC 5272/5273) and EST /fullcmc (RFC 7030 §4.3): one demo PKI per module.

- `cmc_server`: a real `iotpki serve --https-port` for the interop modules (BouncyCastle,
  openssl), shared by the module (see docs/testing.md);
- `cmc_pki`: the same PKI in process, with both CMC apps (`/cmc`, `/fullcmc`) over httpx's
  ASGI transport (no socket), for the behaviour tests.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from starlette.applications import Starlette

from iotpki.app import PKI, build_cmc_server
from iotpki.protocols.cmc.routes import est_routes, http_routes
from tests.cmc.client import Answer, read_answer
from tests.conftest import last_audit_seq, shared_demo_pki
from tests.est.conftest import EST, start_server
from tests.servers import free_port


@pytest.fixture(scope="module")
def cmc_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[EST]:
    directory = tmp_path_factory.mktemp("cmc")
    http_port, https_port = free_port(), free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{http_port}") as pki:
        (directory / "client").mkdir()
        shared = start_server(pki, pki.settings, (http_port, https_port), directory / "client")
        try:
            yield shared
        finally:
            shared.stop()


class InProcessCMC:
    """The CMC routes of both listeners in process; `audit_after` marks the test's start."""

    def __init__(self, pki: PKI, directory: Path, portal: Any, server: Any = None,
                 client: tuple[str, int] = ("127.0.0.1", 123),
                 tls_unique: bytes | None = None) -> None:
        self.pki = pki
        self.dir = directory
        server = server or build_cmc_server(pki)
        starlette = Starlette(routes=[*est_routes(server), *http_routes(server)])

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if tls_unique is not None and scope["type"] == "http":  # as our HTTPS listener
                scope = {**scope, "extensions": {"tls": {"tls_unique": tls_unique}}}
            await starlette(scope, receive, send)

        self._portal = portal
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client),
                                         base_url="https://cmc.test")
        self.audit_after = last_audit_seq(pki)

    def post(self, path: str, body: bytes,
             content_type: str = "application/pkcs7-mime; smime-type=CMC-request",
             method: str = "POST") -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, path, content=body,
                                         headers={"Content-Type": content_type}))

    def cmc(self, der: bytes, label: str = "") -> Answer:
        """RFC 5273: binary, always 200 with the signed PKIResponse."""
        answer = self.post(f"/cmc/{label}" if label else "/cmc", der)
        return read_answer(answer.status_code, answer.headers, answer.content, False)

    def fullcmc(self, der: bytes, label: str = "") -> Answer:
        """RFC 7030 §4.3: base64 both ways."""
        middle = f"/{label}" if label else ""
        answer = self.post(f"/.well-known/est{middle}/fullcmc", base64.encodebytes(der))
        return read_answer(answer.status_code, answer.headers, answer.content, True)

    def close(self) -> None:
        self._portal.call(self._client.aclose)

    def refusals(self) -> list[dict[str, object]]:
        return [dict(e.record.details) | {"action": e.record.action}
                for e in self.pki.audit.entries(after=self.audit_after, limit=None)
                if e.record.outcome == "refused"]


@pytest.fixture(scope="module")
def cmc_pki(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[PKI]:
    directory = tmp_path_factory.mktemp("cmc-pki")
    with shared_demo_pki(request, directory, module_database_url, "http://pki.test:8080") as pki:
        yield pki


@pytest.fixture
def portal() -> Iterator[Any]:
    with anyio.from_thread.start_blocking_portal() as running:
        yield running


@pytest.fixture
def cmc(cmc_pki: PKI, tmp_path: Path) -> Iterator[InProcessCMC]:
    with anyio.from_thread.start_blocking_portal() as portal:
        scene = InProcessCMC(cmc_pki, tmp_path, portal)
        try:
            yield scene
        finally:
            scene.close()
