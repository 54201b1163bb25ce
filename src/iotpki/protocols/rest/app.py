"""The FastAPI application of `/api/v1`: routers, problem handlers, OpenAPI document."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from iotpki.protocols.rest import (
    audit,
    certificates,
    devices,
    directory,
    manifests,
    registrations,
)
from iotpki.protocols.rest.body_guard import BodyGuard
from iotpki.protocols.rest.context import APIServices, authenticate
from iotpki.protocols.rest.problems import install_problem_handlers

PREFIX = "/api/v1"
DESCRIPTION = """\
REST API of iotpki for CRM and device-management integrators.

**Authentication**: an API key as `Authorization: Bearer iotpki_<id>_<secret>`, or a TLS
client certificate bound to a principal. **Roles**: admin, registrar, operator, auditor;
a principal sees and changes only its own organization's objects.
**Lists** are paginated with `limit` and an opaque `cursor` (`next_cursor`).
**Creating POSTs** accept an `Idempotency-Key` header.
**Errors** are RFC 9457 problem documents (`application/problem+json`).
"""


def create_api(api: APIServices) -> FastAPI:
    app = FastAPI(title="iotpki", version="1", description=DESCRIPTION,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=f"{PREFIX}/docs",
                  redoc_url=None)
    app.state.services = api
    router = APIRouter(prefix=PREFIX)
    for module in (directory, registrations, manifests, certificates, devices, audit):
        router.include_router(module.router)
    app.include_router(router)
    install_problem_handlers(app)
    app.add_middleware(BodyGuard, authenticate=partial(authenticate, api))  # issue 15 item 4
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.1 document, cached; the mutual-TLS scheme added (FastAPI has none)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["clientCertificate"] = {
            "type": "mutualTLS",
            "description": "A TLS client certificate bound to a principal (HTTPS listener)"}
        for path in document.get("paths", {}).values():
            for operation in path.values():
                if "security" in operation:
                    operation["security"] = [{"apiKey": []}, {"clientCertificate": []}]
        app.openapi_schema = document
    return app.openapi_schema
