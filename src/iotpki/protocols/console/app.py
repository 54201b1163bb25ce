"""The console's Starlette application: login and logout, its style sheet, and the screens
of the route table (`routes.SCREENS`), each run in a worker thread (the core is sync) for a
signed-in principal, POSTs only from our own origin and with the session's CSRF token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache, partial
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from iotpki.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
)
from iotpki.core.integration.console_session import SignedIn
from iotpki.protocols.console import session
from iotpki.protocols.console.context import PREFIX, ConsoleServices, Visit
from iotpki.protocols.console.rendering import SECURITY_HEADERS, render
from iotpki.protocols.console.routes import SCREENS, UPLOAD_PATH, ScreenRoute
from iotpki.wire.errors import PKIError

Endpoint = Callable[[Request], Awaitable[Response]]
# Core errors → the page's status; any other PKIError (policy, configuration, decoding) → 422.
STATUS: tuple[tuple[type[PKIError], int], ...] = (
    (NotFoundError, 404), (AccessDeniedError, 403), (ConflictError, 409))


def create_console(services: ConsoleServices) -> Starlette:
    """Mounted by `app.https_app` at `/console`."""
    routes = [Route("/login", partial(_login, services), methods=["GET", "POST"]),
              Route("/login/certificate", partial(_certificate_login, services),
                    methods=["POST"]),
              Route("/logout", partial(_logout, services), methods=["POST"]),
              Route("/static/{name}", _static),
              *(Route(s.path, _screen(services, s), methods=[s.method]) for s in SCREENS)]
    return Starlette(routes=routes)


def error_page(visit: Visit | None, status: int, message: str) -> Response:
    return render("error.html", visit, status, {"status": status, "message": message})


def _status(error: PKIError) -> int:
    return next((status for kind, status in STATUS if isinstance(error, kind)), 422)


def _screen(services: ConsoleServices, screen: ScreenRoute) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            current = await run_in_threadpool(session.signed_in, services, request)
        except AuthenticationError:
            if request.method == "GET":
                return RedirectResponse(f"{PREFIX}/login", 303)
            return session.end_session(error_page(None, 401, "Your session has ended: log in "
                                                           "again."))
        visit = Visit(request, current, services, render)
        if request.method == "POST":
            refused = await _check_post(services, visit)
            if refused is not None:
                return refused
        try:
            return await run_in_threadpool(screen.view, visit, **request.path_params)
        except PKIError as exc:
            return error_page(visit, _status(exc), str(exc))
    return endpoint


async def _check_post(services: ConsoleServices, visit: Visit) -> Response | None:
    """The origin, then the CSRF token of the form; a refusal is audited and changes
    nothing."""
    request = visit.request
    reason = None
    if not session.same_origin(request, services.origins):  # before the body is read
        reason = "the request came from another site"
    else:
        try:
            visit.form = await session.read_form(
                request, files=request.url.path.endswith(UPLOAD_PATH))
        except session.BadFormError as exc:
            return error_page(visit, exc.status, str(exc))
        if not visit.signed_in.csrf_matches(visit.form.get("csrf")):
            reason = "the form's CSRF token is missing or wrong"
    if reason is None:
        return None
    principal = visit.principal
    await run_in_threadpool(services.sessions.refuse, "console.request", principal.actor,
                            request.url.path, {"reason": reason})
    return error_page(visit, 403, f"Refused: {reason}. Reload the page and try again.")


async def _login(services: ConsoleServices, request: Request) -> Response:
    if request.method == "GET":
        return session.login_page()
    if not session.same_origin(request, services.origins):
        return session.login_page("Refused: the login form came from another site.", 403)
    try:
        form = await session.read_form(request)
    except session.BadFormError as exc:
        return session.login_page(str(exc), exc.status)
    return await run_in_threadpool(session.login_with_key, services, form)


async def _certificate_login(services: ConsoleServices, request: Request) -> Response:
    if not session.same_origin(request, services.origins):
        return session.login_page("Refused: the login form came from another site.", 403)
    return await run_in_threadpool(session.login_with_certificate, services, request)


async def _logout(services: ConsoleServices, request: Request) -> Response:
    try:
        current: SignedIn = await run_in_threadpool(session.signed_in, services, request)
    except AuthenticationError:
        return session.end_session(RedirectResponse(f"{PREFIX}/login", 303))
    visit = Visit(request, current, services, render)
    refused = await _check_post(services, visit)
    if refused is not None:
        return refused
    return await run_in_threadpool(session.logout, services, current)


STATIC = {"console.css": "text/css", "icon.svg": "image/svg+xml"}  # the whole list


@cache
def _static_file(name: str) -> bytes:
    return resources.files("iotpki.protocols.console").joinpath(f"static/{name}").read_bytes()


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return error_page(None, 404, "no such file")
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
    return Response(_static_file(name), media_type=STATIC[name], headers=headers)
