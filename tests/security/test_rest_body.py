"""Issue 15 item 4: the REST API authenticates before it reads a body, and caps bodies per
route (413 problem JSON, RFC 9110 §15.5.14). The application is driven as ASGI directly so
the test sees how many body bytes it pulled from the connection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from iotpki.app import PKI, api_services
from iotpki.core.integration.principal import Role
from iotpki.protocols.rest.app import create_api
from iotpki.settings import BodyLimits, Settings

CHUNK = 1024 * 1024


class Attack:
    """An HTTP request whose body is `total` bytes of JSON-ish garbage, sent in 1 MiB chunks
    only when the application asks for them."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def receive(self) -> dict[str, Any]:
        if self.pulled >= self.total:
            return {"type": "http.disconnect"}
        size = min(CHUNK, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b"[" * size,
                "more_body": self.pulled < self.total}


def call(app: Any, path: str, attack: Attack, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "https", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("198.51.100.7", 4000),
             "server": ("iotpki.test", 443),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    anyio.run(app, scope, attack.receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body else {}


@pytest.fixture
def app(demo_pki: PKI) -> Any:
    return create_api(api_services(demo_pki))


@pytest.fixture
def admin_key(demo_pki: PKI) -> str:
    created = demo_pki.principals.create_api_key("operatorco", Role.ADMIN, "admin", "test")
    assert created.api_key is not None
    return created.api_key


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_100_mb_body_without_credentials_is_never_read(app: Any, length: bool) -> None:
    attack = Attack(100 * CHUNK)
    headers = {"Content-Type": "application/json"}
    headers |= {"Content-Length": str(attack.total)} if length else {
        "Transfer-Encoding": "chunked"}
    status, problem = call(app, "/api/v1/registrations", attack, headers)
    assert status == 401 and problem["type"] == "urn:iotpki:problem:unauthenticated"
    assert attack.pulled == 0


def test_wrong_credentials_are_refused_before_the_body_too(app: Any) -> None:
    attack = Attack(100 * CHUNK)
    status, _ = call(app, "/api/v1/manifests/import", attack,
                     {"Authorization": "Bearer iotpki_nobody_guess", "Content-Length": "104857600"})
    assert status == 401 and attack.pulled == 0


def test_authenticated_body_over_the_route_cap_is_413(app: Any, admin_key: str) -> None:
    cap = BodyLimits().for_path("/api/v1/registrations")
    announced = Attack(100 * CHUNK)
    status, problem = call(app, "/api/v1/registrations", announced, {
        "Authorization": f"Bearer {admin_key}", "Content-Length": str(announced.total)})
    assert status == 413 and problem["status"] == 413 and announced.pulled == 0
    assert problem["type"] == "urn:iotpki:problem:payload-too-large"
    chunked = Attack(100 * CHUNK)
    status, _ = call(app, "/api/v1/registrations", chunked, {
        "Authorization": f"Bearer {admin_key}", "Transfer-Encoding": "chunked"})
    assert status == 413 and chunked.pulled <= cap + CHUNK


def test_bulk_routes_have_larger_caps_and_normal_requests_pass(app: Any, admin_key: str) -> None:
    limits = BodyLimits()
    assert limits.for_path("/api/v1/manifests/import") > limits.default
    attack = Attack(2 * CHUNK)  # over the default, under the manifest cap: read, then refused
    status, problem = call(app, "/api/v1/manifests/import", attack, {
        "Authorization": f"Bearer {admin_key}", "Content-Type": "application/json",
        "Content-Length": str(attack.total)})
    assert status in (400, 422) and attack.pulled == attack.total, problem


def test_limits_come_from_the_environment(tmp_path: Path) -> None:
    limits = Settings.from_environment(tmp_path, env={
        "IOTPKI_REST_MAX_BODY": "1000", "IOTPKI_REST_MAX_BULK_BODY": "5000"}).rest_bodies
    assert limits.for_path("/api/v1/registrations") == 1000
    assert limits.for_path("/api/v1/registrations/bulk") == 5000


@pytest.mark.parametrize("path", ["/api/v1/audit", "/no/such/path", "", "/.well-known/est/x"])
def test_a_query_string_that_is_not_utf8_is_400_on_every_path(demo_pki: PKI, path: str) -> None:
    """Found by the REST fuzz run: Starlette decoded the query string as UTF-8 while routing
    and raised out of the application (HTTP 500)."""
    from iotpki.app import https_app
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "https", "path": path, "raw_path": path.encode(),
             "query_string": b'5\xdc\x06\x83"', "root_path": "", "headers": [],
             "client": ("198.51.100.7", 4000), "server": ("iotpki.test", 443)}
    anyio.run(https_app(demo_pki), scope, receive, send)
    assert sent[0]["status"] == 400
