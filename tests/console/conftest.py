"""The web console in process: the HTTPS listener's application (`app.https_app`) over httpx's
ASGI transport, on the REST API tests' world (OperatorCo's certificate, registration and
device; one API key per organization and role). The browser tests (`test_browser.py`) run a
real `iotpki serve` instead."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio.from_thread
import httpx
import pytest

from iotpki.app import PKI, https_app
from iotpki.core.integration.principal import Role
from tests.api.conftest import APIClient, World, build_world

BASE = "https://iotpki.test"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleClient:
    """A browser-like client: keeps the session cookie (sent over https only, under
    /console), follows nothing by itself."""

    def __init__(self, app: Any) -> None:
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self.http.request, method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None,
             **kwargs: Any) -> httpx.Response:
        headers = {"Origin": BASE, **kwargs.pop("headers", {})}
        return self.request("POST", path, data=data or {}, headers=headers, **kwargs)

    def login(self, key: str) -> httpx.Response:
        answer = self.post("/console/login", {"api_key": key})
        assert answer.status_code == 303, answer.text
        return answer

    def csrf(self, path: str = "/console/") -> str:
        found = CSRF.search(self.get(path).text)
        assert found is not None
        return found.group(1)

    def close(self) -> None:
        self._portal.call(self.http.aclose)
        self._portal_context.__exit__(None, None, None)


@pytest.fixture
def database_url() -> None:
    """SQLite: the console's queries run on PostgreSQL in the browser module's server."""
    return None


@pytest.fixture
def console_app(demo_pki: PKI) -> Any:
    return https_app(demo_pki)


@pytest.fixture
def world(demo_pki: PKI, console_app: Any) -> Iterator[World]:
    api = APIClient(console_app)
    try:
        yield build_world(demo_pki, api)
    finally:
        api.close()


@pytest.fixture
def browser(console_app: Any) -> Iterator[ConsoleClient]:
    client = ConsoleClient(console_app)
    try:
        yield client
    finally:
        client.close()


def signed_in(app: Any, world: World, organization: str, role: Role) -> ConsoleClient:
    client = ConsoleClient(app)
    client.login(world.key(organization, role))
    return client
