"""The console in a real headless Chromium against one `iotpki serve --https-port` per module
(and database): log in with an API key, open every screen with no error in the browser's
console, log out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from iotpki.app import PKI
from iotpki.core.integration.principal import Role
from tests.api.conftest import OTHER, OWN, issue_operational
from tests.conftest import shared_demo_pki
from tests.console.browser import Browser, need_chromium
from tests.lifecycle.fleet import operational_device
from tests.servers import ServerProcess, free_port


@dataclass
class Served:
    pki: PKI
    server: ServerProcess
    keys: dict[tuple[str, Role], str]
    device: str

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.https_port}"


@pytest.fixture(scope="module")
def console_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
                   request: pytest.FixtureRequest) -> Iterator[Served]:
    need_chromium()
    directory = tmp_path_factory.mktemp("console")
    http_port, https_port = free_port(), free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{http_port}") as pki:
        keys = {}
        for organization in (OWN, OTHER):
            for role in (Role.ADMIN, Role.OPERATOR, Role.AUDITOR):
                created = pki.principals.create_api_key(organization, role, f"{role}-console",
                                                        "test")
                assert created.api_key is not None
                keys[(organization, role)] = created.api_key
        issue_operational(pki, "sensor-console")
        device = operational_device(pki).device_id
        server = ServerProcess(pki.settings, http_port, https_port,
                               log_path=directory / "server.log").start()
        try:
            yield Served(pki, server, keys, device)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def chromium(console_server: Served) -> Iterator[Browser]:
    browser = Browser(console_server.url)
    try:
        yield browser
    finally:
        browser.close()


def log_in(browser: Browser, key: str) -> None:
    browser.driver.delete_all_cookies()
    browser.open("/console/login")
    browser.fill("api_key", key)
    browser.submit("form[action='/console/login'] button", "/console/")


def test_log_in_open_every_screen_and_log_out(console_server: Served,
                                              chromium: Browser) -> None:
    chromium.open("/console/")
    assert chromium.path == "/console/login"
    chromium.screenshot("login")
    log_in(chromium, console_server.keys[(OWN, Role.ADMIN)])
    assert "Fleet overview" in chromium.text() and "operational" in chromium.text()
    chromium.screenshot("overview")
    assert chromium.console_errors() == []
    chromium.submit("header form button", "/console/login")  # log out
    chromium.open("/console/")
    assert chromium.path == "/console/login"
    assert chromium.console_errors() == []
