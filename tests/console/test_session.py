"""Logging in and out of the console, the session cookie, and the CSRF and origin checks of
every POST (in process)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from iotpki.app import PKI, https_app
from iotpki.core.integration.principal import Role
from iotpki.settings import console_origins
from iotpki.store.schema import console_sessions
from tests.api.conftest import OWN, World
from tests.conftest import last_audit_seq
from tests.console.conftest import BASE, ConsoleClient


def audit_after(pki: PKI, seq: int, action: str) -> list[Any]:
    return [e for e in pki.audit.entries(seq, None) if e.record.action == action]


def stored_sessions(pki: PKI) -> list[Any]:
    with pki.database.engine.connect() as conn:
        return list(conn.execute(select(console_sessions)))


def test_login_sets_a_strict_session_cookie_and_stores_only_its_hash(
        world: World, browser: ConsoleClient) -> None:
    assert browser.get("/console/").headers["location"] == "/console/login"
    assert "API key" in browser.get("/console/login").text
    start = last_audit_seq(world.pki)
    answer = browser.login(world.key(OWN, Role.OPERATOR))
    cookie = answer.headers["set-cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=strict", "Path=/console"):
        assert attribute.lower() in cookie.lower(), cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    rows = stored_sessions(world.pki)
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in str(tuple(r)) for r in rows)
    page = browser.get("/console/")
    assert page.status_code == 200 and "operatorco" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    [login] = audit_after(world.pki, start, "console.login")
    assert login.record.outcome == "success" and login.record.actor.endswith(f"@{OWN}")


def test_a_wrong_key_is_refused_and_audited(world: World, browser: ConsoleClient) -> None:
    start = last_audit_seq(world.pki)
    key = world.key(OWN, Role.ADMIN)
    answer = browser.post("/console/login", {"api_key": key[:-3] + "xyz"})
    assert answer.status_code == 401 and "set-cookie" not in answer.headers
    [refusal] = audit_after(world.pki, start, "console.login")
    assert refusal.record.outcome == "refused"
    assert key[-20:] not in str(refusal.record)  # the secret is never logged
    assert browser.get("/console/").status_code == 303


def test_logout_ends_the_session_everywhere(world: World, console_app: Any,
                                            browser: ConsoleClient) -> None:
    browser.login(world.key(OWN, Role.AUDITOR))
    token = browser.http.cookies["iotpki_console"]
    refused = browser.post("/console/logout", {})  # no CSRF token
    assert refused.status_code == 403
    assert browser.get("/console/").status_code == 200
    out = browser.post("/console/logout", {"csrf": browser.csrf()})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert stored_sessions(world.pki) == []
    replay = ConsoleClient(console_app)  # another tab, worker or node with the old cookie
    try:
        replay.http.cookies.set("iotpki_console", token, domain="iotpki.test", path="/console")
        assert replay.get("/console/").status_code == 303
    finally:
        replay.close()


def test_a_post_from_another_origin_is_refused(world: World, browser: ConsoleClient) -> None:
    browser.login(world.key(OWN, Role.ADMIN))
    csrf = browser.csrf()
    start = last_audit_seq(world.pki)
    answer = browser.post("/console/logout", {"csrf": csrf},
                          headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403
    [refusal] = audit_after(world.pki, start, "console.request")
    assert refusal.record.outcome == "refused" and "another site" in refusal.record.details["reason"]
    cross = browser.post("/console/logout", {"csrf": csrf},
                         headers={"Origin": BASE, "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert browser.get("/console/").status_code == 200  # still logged in


def test_a_proxy_origin_named_by_the_operator_is_accepted_and_no_other(
        world: World, demo_pki: PKI) -> None:
    """Behind a reverse proxy the browser's `Origin` is the proxy's (https://pki.example.com,
    port 443), not the listener's: accepted once named in IOTPKI_CONSOLE_ORIGINS."""
    settings = dataclasses.replace(demo_pki.settings,
                                   console_origins=console_origins("https://PKI.example.com:443"))
    proxied = ConsoleClient(https_app(dataclasses.replace(demo_pki, settings=settings)))
    try:
        proxy = {"Origin": "https://pki.example.com"}
        assert proxied.post("/console/login", {"api_key": world.key(OWN, Role.ADMIN)},
                            headers=proxy).status_code == 303
        csrf = proxied.csrf()
        assert proxied.post("/console/logout", {"csrf": csrf},
                            headers={"Origin": "https://pki.example.com:8443"}).status_code == 403
        assert proxied.post("/console/logout", {"csrf": csrf},
                            headers=proxy).status_code == 303
    finally:
        proxied.close()
    unnamed = ConsoleClient(https_app(demo_pki))
    try:
        assert unnamed.post("/console/login", {"api_key": world.key(OWN, Role.ADMIN)},
                            headers={"Origin": "https://pki.example.com"}).status_code == 403
    finally:
        unnamed.close()


def test_console_origins_are_written_as_browsers_send_them() -> None:
    """RFC 6454 §6.2: an IPv6 host keeps its brackets, a Unicode host is punycode, the
    scheme's default port is left out."""
    assert console_origins("https://[::1]:8443, https://bücher.example:443") == (
        "https://[::1]:8443", "https://xn--bcher-kva.example")


@pytest.mark.parametrize("given", ["http://pki.example.com", "https://pki.example.com/console",
                                   "https://user@pki.example.com", "pki.example.com",
                                   "https://pki.example.com:99999"])
def test_a_console_origin_must_be_an_https_origin(given: str) -> None:
    with pytest.raises(ValueError, match="IOTPKI_CONSOLE_ORIGINS"):
        console_origins(given)


def test_a_revoked_principal_loses_its_session(world: World, browser: ConsoleClient) -> None:
    created = world.pki.principals.create_api_key(OWN, Role.OPERATOR, "temp", "test")
    assert created.api_key is not None
    browser.login(created.api_key)
    assert browser.get("/console/").status_code == 200
    world.pki.principals.revoke(created.principal.id, "test")
    assert browser.get("/console/").status_code == 303


def test_login_with_a_client_certificate(world: World, console_app: Any) -> None:
    """The HTTPS listener puts the TLS client certificate into the ASGI scope; a principal
    bound to it logs in without a key."""
    certificate = world.certificate.certificate
    world.pki.principals.create_certificate_principal(
        OWN, Role.AUDITOR, "tls-user", "test", fingerprint=world.certificate.fingerprint)
    pem = certificate.public_bytes(Encoding.PEM).decode()

    async def with_tls(scope: Any, receive: Any, send: Any) -> None:
        scope = {**scope, "extensions": {"tls": {"client_cert_chain": [pem]}}}
        await console_app(scope, receive, send)

    client = ConsoleClient(with_tls)
    bare = ConsoleClient(console_app)
    try:
        answer = client.post("/console/login/certificate")
        assert answer.status_code == 303, answer.text
        assert "tls-user" in client.get("/console/").text
        assert bare.post("/console/login/certificate").status_code == 401
    finally:
        client.close()
        bare.close()
