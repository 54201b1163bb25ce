"""ASGI middleware of both listeners' applications: a query string that is not UTF-8 gets
400 (RFC 3986 §2.5: our query parameters are UTF-8 text), never a 500."""

from __future__ import annotations

from typing import Any


class QueryGuard:
    """ASGI middleware of both applications: a query string that is not UTF-8 gets 400
    (RFC 3986 §2.5: our query parameters are UTF-8 text). Starlette decodes the query
    string as UTF-8 when it builds a URL (routing's slash redirect, any route that reads
    parameters) and raised out of the application: a 500."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            try:
                bytes(scope.get("query_string", b"")).decode("utf-8")
            except UnicodeDecodeError:
                await _bad_query(scope, send)
                return
        await self._app(scope, receive, send)


async def _bad_query(scope: dict[str, Any], send: Any) -> None:
    if str(scope.get("path", "")).startswith("/api/"):
        media, body = "application/problem+json", (
            b'{"type":"urn:iotpki:problem:invalid-request","title":"The request cannot be '
            b'carried out as asked","status":400,"detail":"the query string is not UTF-8"}')
    else:
        media, body = "text/plain; charset=utf-8", b"the query string is not UTF-8\n"
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", media.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
