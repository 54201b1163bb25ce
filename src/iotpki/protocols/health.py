"""Health endpoints of the plain-HTTP listener, for orchestrators: `/healthz` answers 200
while the process serves; `/readyz` 200 when the database answers too, else 503 (take the
node out of rotation, keep it)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


def health_routes(schema_revision: Callable[[], str | None]) -> list[Route]:
    """`schema_revision` asks the database (None or an exception: not ready)."""

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        try:
            revision = await run_in_threadpool(schema_revision)
        except Exception as exc:  # any failure of the database means not ready
            log.warning("readiness: database unavailable: %s", exc)
            revision = None
        if revision is None:
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ready\n")

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"])]
