"""OCSP over HTTP (RFC 6960 Appendix A; RFC 5019 §5 and §6).

- GET /ocsp/<ca-label>/<percent-encoded standard base64 of the DER request> (A.1; base64url
  is accepted as well) and POST /ocsp/<ca-label> with the DER request as the body.
- Every answer, errors included, is an OCSP response with HTTP 200 and
  `application/ocsp-response`: clients such as `openssl ocsp` read the OCSP status
  (malformedRequest, unauthorized, internalError) only from a 200 answer.
- Cacheable answers to GET carry Cache-Control max-age up to nextUpdate, Last-Modified,
  Expires and ETag (RFC 5019 §6.2); answers with a nonce are never cacheable.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
from datetime import datetime
from typing import Protocol
from urllib.parse import unquote

from cryptography.x509 import ocsp
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from iotpki.core.revocation.ocsp import OCSPAnswer, failure
from iotpki.protocols.http_dates import http_date

MEDIA_TYPE = "application/ocsp-response"
MAX_REQUEST = 16 * 1024  # a request naming dozens of certificates fits easily
log = logging.getLogger(__name__)


class Responder(Protocol):
    def answer_from_cache(self, authority: str, request_der: bytes) -> OCSPAnswer | None: ...

    def respond(self, authority: str, request_der: bytes) -> OCSPAnswer: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


def decode_get_path(encoded: str) -> bytes | None:
    """The DER request from the GET path element, or None (malformed)."""
    text = unquote(encoded)
    for alphabet in (b"+/", b"-_"):
        try:
            return base64.b64decode(text.encode("ascii"), altchars=alphabet, validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            continue
    return None


@functools.lru_cache(maxsize=8192)
def _validity_headers(der: bytes, this_update: datetime, next_update: datetime) -> dict[str, str]:
    """Headers fixed for one pre-signed response (computed once, not per request)."""
    return {
        "Last-Modified": http_date(this_update),
        "Expires": http_date(next_update),
        "ETag": f'"{hashlib.sha1(der, usedforsecurity=False).hexdigest()}"',
    }


def _headers(answer: OCSPAnswer, now: datetime, get: bool) -> dict[str, str]:
    if not (get and answer.cacheable and answer.next_update and answer.this_update):
        return {"Cache-Control": "no-cache, no-store"} if get else {}
    max_age = max(0, int((answer.next_update - now).total_seconds()))
    return {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        **_validity_headers(answer.der, answer.this_update, answer.next_update),
    }


class OCSPEndpoint:
    def __init__(self, responder: Responder, clock: Clock) -> None:
        self._responder = responder
        self._clock = clock

    async def answer(self, authority: str, der: bytes | None, get: bool) -> Response:
        try:
            result = await self._result(authority, der)
        except Exception:  # a fault of ours still gets an OCSP answer (RFC 6960 §2.3)
            log.exception("OCSP request for %s failed", authority)
            result = failure(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        return Response(result.der, media_type=MEDIA_TYPE,
                        headers=_headers(result, self._clock.now(), get))

    async def _result(self, authority: str, der: bytes | None) -> OCSPAnswer:
        if der is None:
            return failure(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        # Pre-signed answers come straight from memory; anything that reads the database or
        # signs runs in a worker thread so the event loop never waits on it.
        cached = self._responder.answer_from_cache(authority, der)
        if cached is not None:
            return cached
        return await run_in_threadpool(self._responder.respond, authority, der)

    async def get(self, request: Request) -> Response:
        return await self.answer(request.path_params["authority"],
                                 decode_get_path(request.path_params["encoded"]), get=True)

    async def post(self, request: Request) -> Response:
        return await self.answer(request.path_params["authority"], await _body(request),
                                 get=False)


async def _body(request: Request) -> bytes | None:
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_REQUEST:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return None
    return b"".join(chunks) or None


def routes(responder: Responder, clock: Clock) -> list[Route]:
    endpoint = OCSPEndpoint(responder, clock)
    return [
        Route("/ocsp/{authority}", endpoint.post, methods=["POST"]),
        Route("/ocsp/{authority}/{encoded:path}", endpoint.get, methods=["GET"]),
    ]
