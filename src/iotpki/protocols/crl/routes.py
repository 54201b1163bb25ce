"""CRLs and CA certificates over plain HTTP (RFC 5280 §4.2.1.13, §4.2.2.1, §5).

GET /crl/<ca>.crl and /crl/<ca>-delta.crl (and a CRL shard's /crl/<ca>.<shard>.crl and
/crl/<ca>.<shard>-delta.crl, §5.2.5) answer DER (`application/pkix-crl`, RFC 5280
§4.2.1.13 / RFC 2585 §4.2) with ETag (the CRL number), Last-Modified (thisUpdate),
Expires (nextUpdate) and Cache-Control; If-None-Match gives 304. GET /ca/<ca>.crt answers
the DER CA certificate (`application/pkix-cert`). An unknown name is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iotpki.core.ca.urls import crl_scope_name
from iotpki.core.errors import NotFoundError
from iotpki.core.revocation.status import PublishedCRL
from iotpki.protocols.http_dates import http_date

CRL_MEDIA_TYPE = "application/pkix-crl"
CERT_MEDIA_TYPE = "application/pkix-cert"


class CRLSource(Protocol):
    def current(self, name: str) -> PublishedCRL: ...

    def ca_certificate(self, label: str) -> bytes: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


def crl_headers(crl: PublishedCRL, now: datetime, max_age: int) -> dict[str, str]:
    info = crl.info
    remaining = int((info.next_update - now).total_seconds())
    return {
        # A CRL shard's numbers are its own (RFC 5280 §5.2.3): its scope is in the tag.
        "ETag": f'"{crl_scope_name(info.authority, info.shard)}-{info.kind.value}-{info.number}"',
        "Last-Modified": http_date(info.this_update),
        "Expires": http_date(info.next_update),
        "Cache-Control": f"public, max-age={max(0, min(max_age, remaining))}",
    }


class CRLEndpoint:
    def __init__(self, source: CRLSource, clock: Clock, max_age: int) -> None:
        self._source = source
        self._clock = clock
        self._max_age = max_age

    async def crl(self, request: Request) -> Response:
        try:  # may read or publish in the database: off the event loop
            crl = await run_in_threadpool(self._source.current, request.path_params["name"])
        except NotFoundError:
            return PlainTextResponse("no such CRL\n", status_code=404)
        headers = crl_headers(crl, self._clock.now(), self._max_age)
        if headers["ETag"] in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(crl.der, media_type=CRL_MEDIA_TYPE, headers=headers)

    async def ca_certificate(self, request: Request) -> Response:
        try:
            der = await run_in_threadpool(self._source.ca_certificate,
                                          request.path_params["label"])
        except NotFoundError:
            return PlainTextResponse("no such authority\n", status_code=404)
        return Response(der, media_type=CERT_MEDIA_TYPE,
                        headers={"Cache-Control": f"public, max-age={self._max_age}"})


def routes(source: CRLSource, clock: Clock, max_age: int = 300) -> list[Route]:
    endpoint = CRLEndpoint(source, clock, max_age)
    return [
        Route("/crl/{name}.crl", endpoint.crl, methods=["GET", "HEAD"]),
        Route("/ca/{label}.crt", endpoint.ca_certificate, methods=["GET", "HEAD"]),
    ]
