"""The FastAPI application of `/api/v1`: routers, problem handlers, OpenAPI document."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from iotpki.protocols.rest import (
    acme_keys,
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
from iotpki.settings import BodyLimits

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


def create_api(api: APIServices, body_limits: BodyLimits | None = None) -> FastAPI:
    """The API over `api`; request bodies capped by `body_limits` (the settings'
    `rest_bodies`; the defaults when not given)."""
    app = FastAPI(title="iotpki", version="1", description=DESCRIPTION,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    install_docs(app)
    app.state.services = api
    router = APIRouter(prefix=PREFIX)
    for module in (directory, registrations, manifests, certificates, devices, audit, acme_keys):
        router.include_router(module.router)
    app.include_router(router)
    install_problem_handlers(app)
    app.add_middleware(BodyGuard, authenticate=partial(authenticate, api),  # issue 15 item 4
                       limits=body_limits or BodyLimits())
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


DOCS_ASSETS = f"{PREFIX}/docs/assets"


def install_docs(app: FastAPI) -> None:
    """The interactive docs at /api/v1/docs, with Swagger UI's files served from the
    `swagger-ui-bundle` package: they work offline, with no CDN."""
    try:
        import swagger_ui_bundle  # type: ignore[import-untyped]
    except ImportError:  # an environment set up before the dependency: FastAPI's CDN page
        assets: dict[str, Any] = {}
    else:
        app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
                  name="docs-assets")
        assets = {"swagger_js_url": f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                  "swagger_css_url": f"{DOCS_ASSETS}/swagger-ui.css",
                  "swagger_favicon_url": f"{DOCS_ASSETS}/favicon-32x32.png"}

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{PREFIX}/openapi.json",
                                   title="iotpki REST API", **assets)

    app.add_api_route(f"{PREFIX}/docs", docs, include_in_schema=False)


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
