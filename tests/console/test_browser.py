"""The console in a real headless Chromium against one `iotpki serve --https-port` per module
(and database): log in with an API key, open every screen with no error in the browser's
console, and walk the story: a device reported lost shows on hold in the console, in the
REST API and in the OCSP answer of the plain-HTTP listener; found releases it. Access: an
auditor is shown no action and its POST is refused; another organization's user sees
nothing of ours; a POST without the CSRF token is refused and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.integration.principal import Role
from iotpki.core.lifecycle.device import DeviceState
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
    operational: CertificateRecord  # the device's operational certificate

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.https_port}"

    def key(self, organization: str, role: Role) -> str:
        return self.keys[(organization, role)]


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
        fleet = operational_device(pki)
        server = ServerProcess(pki.settings, http_port, https_port,
                               log_path=directory / "server.log").start()
        try:
            yield Served(pki, server, keys, fleet.device_id, fleet.operational.record)
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


def visit(browser: Browser, path: str, expect: str, screenshot: str | None = None) -> None:
    browser.open(path)
    assert expect in browser.text(), browser.text()[:500]
    if screenshot:
        browser.screenshot(screenshot)
    assert browser.console_errors() == [], path


def certificate_path(record: CertificateRecord) -> str:
    return f"/console/certificates/{record.authority}/{record.serial_hex}"


def test_log_in_open_every_screen_and_log_out(console_server: Served,
                                              chromium: Browser) -> None:
    chromium.open("/console/")
    assert chromium.path == "/console/login"
    chromium.screenshot("login")
    log_in(chromium, console_server.key(OWN, Role.ADMIN))
    visit(chromium, "/console/", "Fleet overview", "overview")
    visit(chromium, "/console/devices", "sensor-0001", "devices")
    visit(chromium, f"/console/devices/{console_server.device}", "Identity timeline", "device")
    visit(chromium, certificate_path(console_server.operational), "Live status",
          "certificate")
    visit(chromium, "/console/authorities", "operatorco-operations", "authorities")
    visit(chromium, "/console/approvals", "Recently decided", "approvals")
    visit(chromium, "/console/audit", "authority.create", "audit")
    chromium.submit("header form button", "/console/login")  # log out
    chromium.open("/console/")
    assert chromium.path == "/console/login"
    assert chromium.console_errors() == []


def ocsp_status(served: Served, record: CertificateRecord) -> str:
    """The status our plain-HTTP listener's OCSP responder gives a relying party."""
    issuer = served.pki.authorities.get(record.authority).certificate
    request = ocsp.OCSPRequestBuilder().add_certificate(
        record.certificate, issuer, hashes.SHA256()).build()
    answer = httpx.post(f"{served.server.url}/ocsp/{record.authority}",
                        content=request.public_bytes(serialization.Encoding.DER),
                        headers={"Content-Type": "application/ocsp-request"}, timeout=10)
    response = ocsp.load_der_ocsp_response(answer.content)
    reason = response.revocation_reason
    status = response.certificate_status.name.lower()
    return "on-hold" if reason is x509.ReasonFlags.certificate_hold else status


def wait_for_ocsp(served: Served, record: CertificateRecord, wanted: str) -> None:
    """The listener drops a cached answer when its revocation poll (every second) sees the
    change on the database."""
    deadline = time.monotonic() + 15
    while (status := ocsp_status(served, record)) != wanted:
        assert time.monotonic() < deadline, f"OCSP still says {status}, not {wanted}"
        time.sleep(0.2)


def api_status(served: Served) -> tuple[str, str]:
    with httpx.Client(verify=False) as client:
        answer = client.get(f"{served.url}/api/v1/devices/{served.device}", headers={
            "Authorization": f"Bearer {served.key(OWN, Role.OPERATOR)}"})
    document = answer.json()
    statuses = {i["fingerprint"]: i["status"] for i in document["history"]}
    return document["state"], statuses[served.operational.fingerprint]


def test_a_lost_device_is_on_hold_everywhere_and_found_releases_it(
        console_server: Served, chromium: Browser) -> None:
    served = console_server
    assert ocsp_status(served, served.operational) == "good"  # cached by the listener now
    log_in(chromium, served.key(OWN, Role.OPERATOR))
    chromium.open(f"/console/devices/{served.device}")
    chromium.submit("#event-lost", f"/console/devices/{served.device}")
    assert "Reported lost: the device is now lost." in chromium.text()
    assert chromium.driver.find_element("id", "device-state").text == "lost"
    chromium.screenshot("device-lost")
    chromium.open(certificate_path(served.operational))
    assert chromium.driver.find_element("id", "certificate-status").text == "on-hold"
    assert "certificateHold" in chromium.driver.find_element("id", "ocsp-status").text
    assert api_status(served) == ("lost", "on-hold")
    wait_for_ocsp(served, served.operational, "on-hold")
    chromium.open(f"/console/devices/{served.device}")
    chromium.submit("#event-found", f"/console/devices/{served.device}")
    assert chromium.driver.find_element("id", "device-state").text == "active"
    assert api_status(served) == ("active", "good")
    wait_for_ocsp(served, served.operational, "good")
    assert chromium.console_errors() == []


@contextmanager
def console_session(served: Served, key: str) -> Iterator[httpx.Client]:
    """A non-browser client with a console session over the real HTTPS listener."""
    with httpx.Client(base_url=served.url, verify=False) as client:
        answer = client.post("/console/login", data={"api_key": key},
                             headers={"Origin": served.url})
        assert answer.status_code == 303
        yield client


def test_an_auditor_is_shown_no_action_and_cannot_act(console_server: Served,
                                                     chromium: Browser) -> None:
    served = console_server
    log_in(chromium, served.key(OWN, Role.AUDITOR))
    visit(chromium, f"/console/devices/{served.device}", "Identity timeline")
    visit(chromium, certificate_path(served.operational), "Live status")
    assert not [b for b in chromium.buttons() if b != "Log out"]
    with console_session(served, served.key(OWN, Role.AUDITOR)) as auditor:
        page = auditor.get(f"/console/devices/{served.device}").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        refused = auditor.post(f"/console/devices/{served.device}/events",
                               data={"event": "stolen", "csrf": csrf},
                               headers={"Origin": served.url})
        assert refused.status_code == 403
    assert served.pki.devices.get(served.device).state is DeviceState.ACTIVE


def test_a_post_without_the_csrf_token_changes_nothing(console_server: Served) -> None:
    served = console_server
    with console_session(served, served.key(OWN, Role.OPERATOR)) as operator:
        refused = operator.post(f"/console/devices/{served.device}/events",
                                data={"event": "stolen"}, headers={"Origin": served.url})
        assert refused.status_code == 403
    assert served.pki.devices.get(served.device).state is DeviceState.ACTIVE


def test_another_organization_sees_nothing_of_ours(console_server: Served,
                                                   chromium: Browser) -> None:
    served = console_server
    log_in(chromium, served.key(OTHER, Role.ADMIN))
    visit(chromium, "/console/devices", "Devices")
    assert "sensor-0001" not in chromium.text()
    visit(chromium, "/console/authorities", "deviceco-devices")
    assert "operatorco" not in chromium.text()
    for path in (f"/console/devices/{served.device}", certificate_path(served.operational)):
        chromium.open(path)
        assert "404" in chromium.text()
    # the two 404 answers are logged by the browser; nothing else may be
    assert all("404" in e["message"] for e in chromium.console_errors())
