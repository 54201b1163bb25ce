"""ACME routes (RFC 8555 §7.1): `/acme[/<label>]/<resource>/...` on the HTTPS listener, a thin
Starlette adapter over `ACMEServer`.

- §6.2: a POST must be `application/jose+json` (else 415 with a `malformed` problem).
- The server's work (database, signature checks, challenge validation, issuance) runs in
  the thread pool; the adapter only frames requests and answers.
"""

from __future__ import annotations

import json
from dataclasses import replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from iotpki.protocols.acme.problems import ACMEProblem
from iotpki.protocols.acme.resources import RESOURCES
from iotpki.protocols.acme.server import ACMEAnswer, ACMERequest, ACMEServer
from iotpki.wire.acme.jws import MAX_JWS_BYTES

JOSE_JSON = "application/jose+json"


def routes(server: ACMEServer) -> list[Route]:
    async def acme(request: Request) -> Response:
        segments = tuple(request.path_params["path"].split("/"))
        if segments[0] in RESOURCES:
            label, path = "", segments
        else:
            label, path = segments[0], segments[1:]
        base = f"{request.url.scheme}://{request.url.netloc}/acme" + (f"/{label}" if label else "")
        url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        call = ACMERequest(request.method, label, path, url, base)
        if request.method == "POST":
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            try:
                if media != JOSE_JSON:
                    raise ACMEProblem("malformed", f"POST bodies are {JOSE_JSON} "
                                                   "(RFC 8555 §6.2)", status=415)
                call = replace(call, body=await _read(request))
            except ACMEProblem as problem:
                return _response(await run_in_threadpool(server.refuse, call, problem),
                                 request.method)
            except ClientDisconnect:
                return Response(status_code=400)
        return _response(await run_in_threadpool(server.handle, call), request.method)

    return [Route("/acme/{path:path}", acme, methods=["GET", "HEAD", "POST"])]


async def _read(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JWS_BYTES:
            raise ACMEProblem("malformed", "request body too large", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _response(answer: ACMEAnswer, method: str) -> Response:
    if answer.body is None:
        content = b""
    elif isinstance(answer.body, bytes):
        content = answer.body
    else:
        content = json.dumps(answer.body, indent=2).encode()
    media = answer.media_type if answer.body is not None else None
    if method == "HEAD":
        content = b""
    return Response(content, status_code=answer.status, media_type=media,
                    headers=answer.headers)
