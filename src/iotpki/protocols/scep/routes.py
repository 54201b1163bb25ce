"""SCEP over HTTP (RFC 8894 §4.1): `GET|POST /scep[/<label>]?operation=...`, on the
plain-HTTP listener (SCEP protects its messages itself; clients speak plain HTTP).

- GetCACaps (§3.5.2): `text/plain`, one capability per line.
- GetCACert (§4.2.1.2): `application/x-x509-ca-ra-cert`, certs-only PKCS #7 with the RA
  certificate and the CA chain.
- PKIOperation (§4.3): GET with the base64 message in `message`, or POST with the DER
  message as body; the CertRep comes back as `application/x-pki-message`. A message that
  allows no CertRep gets 400 with a text/plain explanation.

`/scep/<label>/pkiclient.exe` is the same endpoint, for clients that append the
traditional CGI path.
"""

from __future__ import annotations

import base64
import binascii
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iotpki.core.errors import NotFoundError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.ra.endpoints import Endpoint
from iotpki.protocols.scep.server import BadMessageError, SCEPServer

MAX_BODY = 64 * 1024
PKI_MESSAGE = "application/x-pki-message"
CA_RA_CERT = "application/x-x509-ca-ra-cert"
log = logging.getLogger(__name__)


class _BadRequest(Exception):
    pass


class SCEPRoutes:
    def __init__(self, server: SCEPServer) -> None:
        self._server = server

    async def handle(self, request: Request) -> Response:
        label = request.path_params.get("label", "")
        try:
            endpoint = self._server.endpoint(label)
        except NotFoundError:
            return _text(404, f"no SCEP endpoint labelled {label!r}")
        operation = request.query_params.get("operation", "")
        address = request.client.host if request.client else "-"
        if operation == "GetCACaps":
            return PlainTextResponse(self._server.capabilities(endpoint))
        if operation == "GetCACert":
            body = await run_in_threadpool(self._server.ca_certificates, endpoint)
            return Response(body, media_type=CA_RA_CERT)
        if operation != "PKIOperation":
            await self._refuse(endpoint, address, f"unknown operation {operation[:40]!r}",
                               operation[:40] or "-")
            return _text(400, "operation must be GetCACaps, GetCACert or PKIOperation")
        try:
            message = await _message(request)
        except _BadRequest as exc:
            await self._refuse(endpoint, address, str(exc))
            return _text(400, str(exc))
        try:
            answer = await run_in_threadpool(self._server.operation, endpoint, message, address)
        except BadMessageError as exc:
            log.info("SCEP PKIOperation from %s refused: no CertRep can be formed", address)
            return _text(400, str(exc))
        return Response(answer, media_type=PKI_MESSAGE)

    async def _refuse(self, endpoint: Endpoint, address: str, detail: str,
                      operation: str = "PKIOperation") -> None:
        await run_in_threadpool(self._server.refuse, endpoint, address, R.MALFORMED_REQUEST,
                                detail, operation)


async def _message(request: Request) -> bytes:
    """§4.3: GET carries the message base64 in the query, POST as the DER body."""
    if request.method == "GET":
        text = request.query_params.get("message", "")
        # A '+' of base64 that the client did not percent-encode reads as a space.
        return _base64(text.replace(" ", "+"))
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise _BadRequest("request body too large")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise _BadRequest("client disconnected") from exc
    body = b"".join(chunks)
    if body[:1] != b"\x30":  # some clients POST the base64 text
        return _base64(body.decode("ascii", "replace"))
    return body


def _base64(text: str) -> bytes:
    if not text:
        raise _BadRequest("PKIOperation needs a message")
    if len(text) > MAX_BODY * 2:
        raise _BadRequest("message too large")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _BadRequest("message is not base64") from exc


def _text(status: int, detail: str) -> Response:
    return PlainTextResponse(f"{detail}\n", status_code=status)


def routes(server: SCEPServer) -> list[Route]:
    handler = SCEPRoutes(server).handle
    methods = ["GET", "POST"]
    return [Route("/scep", handler, methods=methods),
            Route("/scep/pkiclient.exe", handler, methods=methods),
            Route("/scep/{label}", handler, methods=methods),
            Route("/scep/{label}/pkiclient.exe", handler, methods=methods)]
