"""Authenticate before reading a body; bound every body (issue 15 item 4).

FastAPI reads and parses a request's JSON body before it solves the dependencies that
authenticate, so a 100 MB body without credentials used to be parsed in full. This ASGI
middleware sits in front of the REST application:

- a request that announces or carries a body is authenticated first, from its headers
  (API key) or TLS client certificate, exactly as `context.current_principal` does; a
  request without usable credentials gets 401 and its body is never read;
- each route has a body cap (`BodyLimits`): a larger `Content-Length`, or a chunked body
  that grows past the cap, gets 413 (RFC 9110 §15.5.14) as problem JSON without being
  read further;
- the body read so far (at most the cap) is handed on to the application, and the
  principal rides along in the scope so the route does not authenticate twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography import x509
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iotpki.core.errors import AuthenticationError
from iotpki.core.integration.principal import Principal
from iotpki.protocols.tls_client import client_certificate
from iotpki.settings import BodyLimits

AUTHENTICATED = "iotpki.principal"  # scope key: the principal the guard authenticated
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


Authenticate = Callable[[str | None, x509.Certificate | None], Principal]


class BodyGuard:
    def __init__(self, app: ASGIApp, authenticate: Authenticate,
                 limits: BodyLimits) -> None:
        self._app = app
        self._authenticate = authenticate
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _is_utf8(scope.get("query_string", b"")):
            # RFC 3986 §2.5: our query parameters are UTF-8 text; Starlette fails on others.
            await _problem(400, "invalid-request", "The request cannot be carried out as asked",
                           "the query string is not UTF-8", scope, {})(scope, receive, send)
            return
        if scope["type"] != "http" or not _has_body(scope):
            await self._app(scope, receive, send)
            return
        cap = self._limits.for_path(scope["path"])
        try:
            principal = await run_in_threadpool(self._authenticate, _header(scope, b"authorization"),
                                                client_certificate(scope))
        except AuthenticationError as exc:
            await _problem(401, "unauthenticated", "Authentication required", str(exc), scope,
                           {"WWW-Authenticate": 'Bearer realm="iotpki"'})(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            await _too_large(cap, scope)(scope, receive, send)
            return
        body = await _read(receive, cap)
        if body is None:
            await _too_large(cap, scope)(scope, receive, send)
            return
        scope[AUTHENTICATED] = principal
        await self._app(scope, _replay(body, receive), send)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _has_body(scope: Scope) -> bool:
    return scope["method"] in _BODY_METHODS or any(
        name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


async def _read(receive: Receive, cap: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds `cap` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # disconnect, as the server reports it
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _too_large(cap: int, scope: Scope) -> JSONResponse:
    return _problem(413, "payload-too-large", "Request body too large",
                    f"this route accepts bodies of at most {cap} bytes", scope,
                    {"Connection": "close"})


def _problem(status: int, kind: str, title: str, detail: str, scope: Scope,
             headers: dict[str, str]) -> JSONResponse:
    body: dict[str, Any] = {"type": f"urn:iotpki:problem:{kind}", "title": title,
                            "status": status, "detail": detail, "instance": scope["path"]}
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)
