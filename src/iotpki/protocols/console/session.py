"""Logging in and out, and what every request of a session is checked for.

- The session token travels in one cookie, `Secure; HttpOnly; SameSite=Strict;
  Path=/console` (RFC 6265 §4.1.2, RFC 6265bis §5.4.7 SameSite): never sent by another
  site's page, never readable by script, never sent over plain HTTP.
- Every POST must come from our own pages: an `Origin` (RFC 6454) or `Sec-Fetch-Site`
  header, when the browser sends one, must name this origin; and every POST of a session
  carries the session's CSRF token in its form (`core.integration.console_session`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from iotpki.core.errors import AuthenticationError
from iotpki.core.integration.console_session import SESSION_LIFETIME, SignedIn
from iotpki.protocols.console.context import PREFIX, ConsoleServices
from iotpki.protocols.console.rendering import render
from iotpki.protocols.tls_client import client_certificate

COOKIE = "iotpki_console"
MAX_FORM = 64 * 1024  # bytes of a form body; larger bodies are refused before parsing
MAX_UPLOAD = 1024 * 1024  # bytes of a signed-in multipart body (a CSV file of 1,000 lines)
MAX_FIELDS = 100


class BadFormError(ValueError):
    """A body that is not a form the console accepts."""

    status = 400


class FormTooLargeError(BadFormError):
    """A body above its cap, refused before it is parsed."""

    status = 413


def signed_in(services: ConsoleServices, request: Request) -> SignedIn:
    token = request.cookies.get(COOKIE)
    if not token:
        raise AuthenticationError("not logged in")
    return services.sessions.resolve(token)


def same_origin(request: Request, also: Collection[str] = ()) -> bool:
    """Whether a POST comes from a page of this origin, or of one of the origins `also` the
    operator named for a reverse proxy in front (browsers send `Origin` on every POST;
    clients that send neither header are judged by the CSRF token alone)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}" or origin in also


async def read_form(request: Request, files: bool = False) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the console's forms), size-capped; with
    `files` (signed-in POSTs only: an anonymous login never makes us read a megabyte) also a
    `multipart/form-data` body (RFC 7578) whose one file part is read as UTF-8 text under its
    field's name."""
    multipart = files and request.headers.get("content-type", "").startswith(
        "multipart/form-data")
    body = await _body(request, MAX_UPLOAD if multipart else MAX_FORM)
    if multipart:
        return await _multipart(request, body)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadFormError(f"not a form: {exc}") from None
    return dict(pairs)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise FormTooLargeError(f"a form body is at most {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormTooLargeError(f"a form body is at most {limit} bytes")
    return body


async def _multipart(request: Request, body: bytes) -> dict[str, str]:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=1, max_fields=MAX_FIELDS,
                             max_part_size=MAX_UPLOAD)
    try:
        parsed = await parser.parse()
    except MultiPartException as exc:
        raise BadFormError(f"not a form: {exc.message}") from None
    form: dict[str, str] = {}
    try:
        for name, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                # utf-8-sig: spreadsheets put a byte order mark before a CSV's first line
                form[name] = (await value.read()).decode("utf-8-sig")
            else:
                form[name] = value
    except UnicodeDecodeError:
        raise BadFormError("an uploaded file must be UTF-8 text") from None
    finally:
        await parsed.close()
    return form


def start_session(response: Response, token: str) -> Response:
    response.set_cookie(COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()),
                        path=PREFIX, secure=True, httponly=True, samesite="strict")
    return response


def end_session(response: Response) -> Response:
    response.delete_cookie(COOKIE, path=PREFIX, secure=True, httponly=True, samesite="strict")
    return response


def login_page(error: str | None = None, status: int = 200) -> Response:
    return render("login.html", None, status, {"error": error})


def login_with_key(services: ConsoleServices, form: dict[str, str]) -> Response:
    key = form.get("api_key", "").strip()
    try:
        principal = services.principals.authenticate_key(key)
    except AuthenticationError as exc:
        services.sessions.refuse("console.login", "console", "-",
                                 {"via": "api-key", "reason": str(exc)})
        return login_page(f"Login refused: {exc}.", 401)
    return start_session(RedirectResponse(f"{PREFIX}/", 303),
                         services.sessions.open(principal, "api-key").token)


def login_with_certificate(services: ConsoleServices, request: Request) -> Response:
    certificate = client_certificate(request.scope)
    try:
        if certificate is None:
            raise AuthenticationError("no client certificate was presented on this connection")
        principal = services.principals.authenticate_certificate(certificate)
    except AuthenticationError as exc:
        actor = certificate.subject.rfc4514_string() if certificate is not None else "console"
        services.sessions.refuse("console.login", actor, "-",
                                 {"via": "certificate", "reason": str(exc)})
        return login_page(f"Login refused: {exc}.", 401)
    return start_session(RedirectResponse(f"{PREFIX}/", 303),
                         services.sessions.open(principal, "certificate").token)


def logout(services: ConsoleServices, session: SignedIn) -> Response:
    services.sessions.close(session)
    return end_session(RedirectResponse(f"{PREFIX}/login", 303))
