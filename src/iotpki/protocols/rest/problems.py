"""Errors as RFC 9457 problem documents (`application/problem+json`), mapped centrally.

Every client mistake is a 4xx with a `type` URI naming the kind of problem
(`urn:iotpki:problem:<kind>`, RFC 9457 §3.1.1), the HTTP `status`, a `title` that is the
same for every occurrence of the kind, and a `detail` for this occurrence. Validation
errors carry an `errors` list; refusals carry the core's `reason`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from iotpki.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PolicyError,
)
from iotpki.core.errors import RefusalReason as R
from iotpki.core.supply_chain.manifests import ManifestRefused
from iotpki.protocols.rest.idempotency import IdempotencyMismatchError
from iotpki.wire.errors import DecodeError, PKIError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URI naming the kind of problem", examples=[
        "urn:iotpki:problem:not-found"])
    title: str = Field(description="Short summary of the kind of problem")
    status: int = Field(description="The HTTP status code", ge=400, le=599)
    detail: str = Field(description="What went wrong in this request")
    instance: str | None = Field(default=None, description="The request path")
    reason: str | None = Field(default=None, description="The core's refusal reason, if any")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors: location, message and type of each")


# Every refusal of the core is a problem of one of two kinds (total over RefusalReason,
# tests/test_refusals.py): a manifest import refused, or any other request refused.
_MANIFEST_REASONS = {R.MANIFEST_MALFORMED, R.MANIFEST_EXPIRED, R.REPLAYED, R.WRONG_RECIPIENT,
                     R.UNTRUSTED_SUPPLIER, R.SIGNER_REVOKED, R.NOT_A_SIGNER, R.BAD_TARGET}
KIND_FOR_REASON: dict[R, str] = {
    r: "manifest-refused" if r in _MANIFEST_REASONS else "refused" for r in R}

# kind → (status, title)
KINDS: dict[str, tuple[int, str]] = {
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed for this role"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict with the current state"),
    "idempotency-key-reused": (422, "Idempotency key reused for a different request"),
    "validation-error": (422, "The request is not valid"),
    "invalid-request": (422, "The request cannot be carried out as asked"),
    "refused": (422, "Refused by policy"),
    "manifest-refused": (422, "Manifest refused"),
    "internal-error": (500, "Internal error"),
}


def problem(kind: str, detail: str, request: Request | None = None, *,
            status: int | None = None, headers: dict[str, str] | None = None,
            **extensions: Any) -> JSONResponse:
    code, title = KINDS.get(kind, (status or 400, kind.replace("-", " ").capitalize()))
    body = Problem(type=f"urn:iotpki:problem:{kind}", title=title, status=status or code,
                   detail=detail, instance=request.url.path if request is not None else None,
                   **extensions)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=body.status,
                        media_type=PROBLEM_JSON, headers=headers)


def _error_kind(exc: Exception) -> tuple[str, dict[str, Any]]:
    """The problem kind of a core error (order matters: subclasses first)."""
    if isinstance(exc, IdempotencyMismatchError):
        return "idempotency-key-reused", {}
    if isinstance(exc, PolicyError):  # a manifest's bad signature is a manifest refusal too
        kind = "manifest-refused" if isinstance(exc, ManifestRefused) else \
            KIND_FOR_REASON[exc.reason]
        return kind, {"reason": exc.reason.value}
    for cls, kind in ((AuthenticationError, "unauthenticated"), (AccessDeniedError, "forbidden"),
                      (NotFoundError, "not-found"), (ConflictError, "conflict"),
                      (ConfigurationError, "invalid-request"), (DecodeError, "invalid-request")):
        if isinstance(exc, cls):
            return kind, {}
    return "invalid-request", {}


async def _core_error(request: Request, exc: Exception) -> JSONResponse:
    kind, extensions = _error_kind(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="iotpki"'} if kind == "unauthenticated" else None
    return problem(kind, str(exc), request, headers=headers, **extensions)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem("validation-error", summary or "invalid request", request, errors=errors)


async def _value_error(request: Request, exc: Exception) -> JSONResponse:
    return problem("invalid-request", str(exc), request)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kinds = {401: "unauthenticated", 403: "forbidden", 404: "not-found",
             405: "method-not-allowed"}
    kind = kinds.get(exc.status_code, "invalid-request" if exc.status_code < 500 else
                     "internal-error")
    return problem(kind, str(exc.detail), request, status=exc.status_code,
                   headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem("internal-error", "the server failed; the request was not carried out",
                   request)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(PKIError, _core_error)
    app.add_exception_handler(ValueError, _value_error)
    app.add_exception_handler(Exception, _unexpected)


def _response(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


# Documented on every operation: what any request may get back.
COMMON_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _response("No credentials, or credentials of no active principal"),
    403: _response("The principal's role does not allow this"),
    404: _response("No such object in the principal's organization"),
    422: _response("The request is not valid"),
}
WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **COMMON_PROBLEMS, 409: _response("Conflicts with the object's current state"),
}
