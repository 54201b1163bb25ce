"""CMC over HTTP: EST's Full PKI Requests (RFC 7030 §4.3) on the HTTPS listener and the
CMC HTTP transport (RFC 5273 §4) on the plain-HTTP listener.

- `POST /.well-known/est[/<label>]/fullcmc` (§4.3.1): `application/pkcs7-mime;
  smime-type=CMC-request`, base64 body; the answer (§4.3.2) is `application/pkcs7-mime;
  smime-type=CMC-response`, base64 (`Content-Transfer-Encoding: base64`): 200 for success
  or pending, a 4xx/5xx carrying the CMC response when refused. The label selects the EST
  endpoint (authority, profile, enrollment methods, and whether it requires the §3.5
  channel binding, checked in a PKCS #10 request's challengePassword as for simpleenroll).
- `POST /cmc[/<label>]` (RFC 5273 §4): the same media types, binary DER; every answer is
  200 with the signed PKIResponse (the status is in it). The label selects a `cmc` endpoint
  of endpoints.yaml.
- Where no PKIResponse can be formed (unknown label 404, wrong media type 415, a body over
  the limit 413, the CA cannot sign 503), a text answer.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iotpki.core.errors import NotFoundError
from iotpki.protocols.channel_binding import SessionBinding, session_binding
from iotpki.protocols.cmc.refusals import HTTP_STATUS
from iotpki.protocols.cmc.server import CMCAnswer, UnsignableError
from iotpki.wire.cmc.request import MAX_REQUEST
from iotpki.wire.est import encode_base64_body

PKCS7_MIME = "application/pkcs7-mime"
CMC_RESPONSE = "application/pkcs7-mime; smime-type=CMC-response"
log = logging.getLogger(__name__)


class Server(Protocol):
    def answer(self, protocol: str, label: str, body: bytes, address: str = "-",
               problem: str | None = None,
               binding: SessionBinding | None = None) -> CMCAnswer: ...


class _TransportError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class CMCEndpoints:
    def __init__(self, server: Server) -> None:
        self._server = server

    async def fullcmc(self, request: Request) -> Response:
        """RFC 7030 §4.3 on an EST endpoint."""
        try:
            raw = await _body(request, base64_limit=True)
            body, problem = _from_base64(raw)
            answer = await self._answer(request, "est", body, problem)
        except _TransportError as exc:
            return _text(exc.status, str(exc))
        status = 200 if answer.fail_info is None else HTTP_STATUS[answer.fail_info]
        headers = {"Content-Transfer-Encoding": "base64"}
        if status == 503:
            headers["Retry-After"] = "60"
        return Response(encode_base64_body(answer.der), status_code=status,
                        media_type=CMC_RESPONSE, headers=headers)

    async def cmc(self, request: Request) -> Response:
        """RFC 5273 §4: binary DER both ways; the status is in the PKIResponse."""
        try:
            body = await _body(request, base64_limit=False)
            answer = await self._answer(request, "cmc", body, None)
        except _TransportError as exc:
            return _text(exc.status, str(exc))
        return Response(answer.der, media_type=CMC_RESPONSE,
                        headers={"Cache-Control": "no-store"})

    async def _answer(self, request: Request, protocol: str, body: bytes,
                      problem: str | None) -> CMCAnswer:
        label = request.path_params.get("label", "")
        address = request.client.host if request.client else "-"
        try:
            return await run_in_threadpool(self._server.answer, protocol, label, body,
                                           address, problem, session_binding(request.scope))
        except NotFoundError as exc:
            raise _TransportError(404, f"no {protocol} endpoint labelled {label!r}") from exc
        except UnsignableError as exc:
            raise _TransportError(503, str(exc)) from exc

    @staticmethod
    async def not_allowed(request: Request) -> Response:
        return PlainTextResponse("CMC requests are POSTed\n", status_code=405,
                                 headers={"Allow": "POST"})


def _text(status: int, detail: str) -> Response:
    headers = {"Retry-After": "60"} if status == 503 else {}
    return PlainTextResponse(f"{detail}\n", status_code=status, headers=headers)


async def _body(request: Request, base64_limit: bool) -> bytes:
    """RFC 5273 §4 / RFC 7030 §4.3.1: `application/pkcs7-mime` (smime-type CMC-request when
    given), at most `MAX_REQUEST` octets of DER."""
    media, _, parameters = request.headers.get("content-type", "").partition(";")
    smime = {k.strip().lower(): v.strip().strip('"').lower() for k, _, v in
             (p.partition("=") for p in parameters.split(";") if p.strip())}.get("smime-type")
    if media.strip().lower() != PKCS7_MIME or smime not in (None, "cmc-request"):
        raise _TransportError(415, f"a Full PKI Request is {PKCS7_MIME}; "
                                   f"smime-type=CMC-request")
    limit = MAX_REQUEST * 4 // 3 + 4096 if base64_limit else MAX_REQUEST
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TransportError(413, "request body too large")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise _TransportError(400, "client disconnected") from exc
    return b"".join(chunks)


def _from_base64(raw: bytes) -> tuple[bytes, str | None]:
    """The DER of a base64 body (RFC 7030 §4.3.1; whitespace and line breaks allowed)."""
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True), None
    except (binascii.Error, ValueError):
        return b"", "the body is not base64 (RFC 7030 §4.3.1)"


def est_routes(server: Server) -> list[Route]:
    """The /fullcmc routes; mounted before EST's own, which would take `fullcmc` as an
    unknown operation."""
    endpoints = CMCEndpoints(server)
    return [
        Route("/.well-known/est/fullcmc", endpoints.fullcmc, methods=["POST"]),
        Route("/.well-known/est/{label}/fullcmc", endpoints.fullcmc, methods=["POST"]),
        Route("/.well-known/est/fullcmc", endpoints.not_allowed, methods=["GET", "PUT", "DELETE"]),
        Route("/.well-known/est/{label}/fullcmc", endpoints.not_allowed,
              methods=["GET", "PUT", "DELETE"]),
    ]


def http_routes(server: Server) -> list[Route]:
    endpoints = CMCEndpoints(server)
    return [Route("/cmc", endpoints.cmc, methods=["POST"]),
            Route("/cmc/{label}", endpoints.cmc, methods=["POST"])]
