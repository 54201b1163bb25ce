"""Server-rendered HTML: Jinja2 templates shipped as package data, escaped by default, and the
response headers every page carries (a Content-Security-Policy that allows no script and
no inline style: the pictures are inline SVG drawn with presentation attributes)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from iotpki.core.integration.access import Action
from iotpki.protocols.console.context import PREFIX

if TYPE_CHECKING:
    from iotpki.protocols.console.context import Visit

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show tenant data: never kept by a shared cache
}
# (key, label, path, what the principal must be allowed to see it)
NAVIGATION = (("overview", "Fleet", "", Action.READ), ("devices", "Devices", "devices", Action.READ),
              ("authorities", "Authorities", "authorities", Action.READ),
              ("enrollment", "Enrollment", "enrollment", Action.READ),
              ("approvals", "Approvals", "approvals", Action.READ),
              ("revocation", "Revocation", "revocation", Action.READ),
              ("posture", "Posture", "posture", Action.READ),
              ("audit", "Audit log", "audit", Action.READ_AUDIT),
              ("integrations", "Integrations", "integrations", Action.READ))


def format_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("iotpki.protocols.console", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["time"] = format_time
    env.globals.update(base=PREFIX, navigation=NAVIGATION, Action=Action)
    return env


def render(template: str, visit: Visit | None, status: int = 200,
           context: dict[str, Any] | None = None) -> HTMLResponse:
    page = {"visit": visit, "principal": visit.principal if visit else None,
            "csrf": visit.signed_in.session.csrf_token if visit else None, **(context or {})}
    html = environment().get_template(template).render(page)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)
