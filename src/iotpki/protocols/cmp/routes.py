"""CMP over HTTP (RFC 9811, formerly RFC 6712; RFC 9483 §6.1).

- `POST /.well-known/cmp` and `POST /.well-known/cmp/p/<label>` (RFC 9811 §3.3; the label
  selects an endpoint of `endpoints.yaml`), body and answer `application/pkixcmp`.
- Every answer to a request on a known endpoint is a CMP message with HTTP 200, errors
  included (RFC 9811 §3.4: the error is in the PKIMessage); bytes that are no PKIMessage
  get an error message with badDataFormat, a fault of ours one with systemFailure. An
  unknown label is 404, a wrong content type 415, a body over the limit 413.
- The core runs in Starlette's thread pool: it blocks on the database and on signing.
"""

from __future__ import annotations

import logging
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from iotpki.core.errors import NotFoundError
from iotpki.wire.cmp.messages import MAX_MESSAGE, PKIMessage, decode_pki_message
from iotpki.wire.errors import DecodeError

MEDIA_TYPE = "application/pkixcmp"
log = logging.getLogger(__name__)


class Server(Protocol):
    def handle(self, label: str, message: PKIMessage, address: str = "-") -> bytes: ...

    def malformed(self, label: str, detail: str) -> bytes: ...

    def fault(self, label: str, message: PKIMessage | None, detail: str) -> bytes: ...


def answer_bytes(server: Server, label: str, body: bytes, address: str = "-") -> bytes:
    try:
        message = decode_pki_message(body)
    except DecodeError as exc:
        try:
            return server.malformed(label, str(exc))
        except NotFoundError:
            raise
        except Exception:
            log.exception("CMP answer to a malformed request on %r failed", label)
            return server.fault(label, None, "internal error; the request was not served")
    try:
        return server.handle(label, message, address)
    except NotFoundError:
        raise
    except Exception:  # a fault of ours is still answered in CMP (never an HTTP 500)
        log.exception("CMP request on endpoint %r failed", label)
        return server.fault(label, message, "internal error; the request was not served")


class CMPEndpoint:
    def __init__(self, server: Server) -> None:
        self._server = server

    async def post(self, request: Request) -> Response:
        label = request.path_params.get("label", "")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != MEDIA_TYPE:
            return Response(f"CMP requests are {MEDIA_TYPE}\n", status_code=415)
        body = await _body(request)
        if body is None:
            return Response("request too large or incomplete\n", status_code=413)
        try:
            address = request.client.host if request.client is not None else "-"
            der = await run_in_threadpool(answer_bytes, self._server, label, body, address)
        except NotFoundError as exc:
            return Response(f"{exc}\n", status_code=404)
        return Response(der, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


async def _body(request: Request) -> bytes | None:
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_MESSAGE:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return None
    return b"".join(chunks)


def routes(server: Server) -> list[Route]:
    endpoint = CMPEndpoint(server)
    return [
        Route("/.well-known/cmp", endpoint.post, methods=["POST"]),
        Route("/.well-known/cmp/p/{label}", endpoint.post, methods=["POST"]),
    ]
