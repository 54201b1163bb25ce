"""Screens 6-10 (revocation center, approvals, posture checks, audit log, integrations) in a
real headless Chromium against the browser module's `iotpki serve` (its fixtures, one server
per module): each opens with no error in the browser's console and its action works end to
end; an auditor is shown no button."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from iotpki.app import PKI, build_sealer
from iotpki.core.integration.principal import Role
from iotpki.core.integration.webhook import DeliveryStatus, RetryPolicy, WebhookDelivery
from iotpki.core.integration.webhook_service import WebhookDispatcher
from iotpki.core.lifecycle.device import DeviceState
from iotpki.protocols.webhook.sender import HTTPWebhookSender
from tests.api.conftest import DOMAIN, OWN
from tests.console.browser import Browser
from tests.console.test_browser import Served, chromium, console_server, log_in
from tests.lifecycle.receiver import webhook_receiver
from tests.test_posture_checks import legacy

__all__ = ["chromium", "console_server"]  # the browser module's fixtures, shared


def wait_for(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def only_delivery(pki: PKI, url: str) -> WebhookDelivery | None:
    subscriptions = {s.id for s in pki.webhooks.find(OWN) if s.url == url}
    found = [d for d in pki.webhooks.deliveries(organization=OWN)
             if d.subscription in subscriptions]
    return found[0] if found else None


def test_integrations_retry_a_failed_delivery(console_server: Served, chromium: Browser) -> None:
    pki = console_server.pki
    # The server's notification worker and this one both deliver (claims are
    # compare-and-set); this one only makes the test quicker.
    worker = WebhookDispatcher(pki.database.unit_of_work, build_sealer(pki.settings),
                               HTTPWebhookSender(), pki.clock,
                               RetryPolicy(base=timedelta(minutes=10), timeout=5))
    with webhook_receiver() as receiver:
        receiver.statuses = [500]
        pki.webhooks.add(OWN, receiver.url, ["device.*"], "test")
        pki.lifecycle.report(console_server.device, "renewal_due", "test")

        def failed() -> bool:
            worker.run_once()
            delivery = only_delivery(pki, receiver.url)
            return delivery is not None and delivery.last_error == "HTTP 500"
        wait_for(failed)

        log_in(chromium, console_server.keys[(OWN, Role.AUDITOR)])
        chromium.open("/console/integrations")
        assert "HTTP 500" in chromium.text() and "Retry now" not in chromium.buttons()
        assert chromium.console_errors() == []

        log_in(chromium, console_server.keys[(OWN, Role.ADMIN)])
        chromium.open("/console/integrations")
        assert receiver.url in chromium.text() and "HTTP 500" in chromium.text()
        chromium.screenshot("integrations")
        failed_delivery = only_delivery(pki, receiver.url)
        assert failed_delivery is not None
        chromium.submit(f"#deliveries form[action$='/{failed_delivery.id}/retry'] button",
                        "/console/integrations")
        assert "due again" in chromium.text()

        def delivered() -> bool:
            worker.deliver_due()
            delivery = only_delivery(pki, receiver.url)
            return delivery is not None and delivery.status is DeliveryStatus.DELIVERED
        wait_for(delivered)
        chromium.open("/console/integrations")
        assert "delivered" in chromium.text()
        assert chromium.console_errors() == []


def test_posture_checks_open_and_lead_to_the_finding(console_server: Served,
                                                     chromium: Browser) -> None:
    pki = console_server.pki
    weak = legacy(pki, "operatorco-operations", "sensor-weak-browser",
                  rsa.generate_private_key(65537, 1024), pki.clock.now() + timedelta(days=60))
    log_in(chromium, console_server.keys[(OWN, Role.AUDITOR)])
    chromium.open("/console/posture")
    assert "Posture checks" in chromium.text() and "RSA 1024" in chromium.text()
    assert chromium.console_errors() == []
    chromium.screenshot("posture")
    chromium.submit(f"#weak-keys a[href$='/{weak.serial_hex}']",
                    f"/console/certificates/operatorco-operations/{weak.serial_hex}")
    assert "sensor-weak-browser" in chromium.text()
    assert chromium.console_errors() == []


def test_revocation_center_reports_lost_after_confirming(console_server: Served,
                                                         chromium: Browser) -> None:
    pki = console_server.pki
    device = pki.devices.get(console_server.device)
    log_in(chromium, console_server.keys[(OWN, Role.OPERATOR)])
    chromium.open("/console/revocation")
    assert "CRLs" in chromium.text() and "OCSP health" in chromium.text()
    assert chromium.console_errors() == []
    chromium.screenshot("revocation")
    for event, state in (("lost", DeviceState.LOST), ("found", DeviceState.ACTIVE)):
        chromium.open("/console/revocation")
        chromium.fill("device", device.name)
        Select(chromium.driver.find_element(By.NAME, "event")).select_by_value(event)
        confirm = f"/console/revocation/devices/{device.id}/{event}"
        chromium.submit("#lifecycle button", confirm)
        assert "What will happen" in chromium.text()
        if event == "lost":
            chromium.screenshot("revocation-confirm")
        assert pki.devices.get(device.id).state is not state  # nothing yet
        chromium.submit("#confirm button", f"/console/devices/{device.id}")
        assert pki.devices.get(device.id).state is state
        assert chromium.console_errors() == []


def test_enrollment_create_a_registration_and_upload_a_csv(console_server: Served,
                                                          chromium: Browser,
                                                          tmp_path: Path) -> None:
    log_in(chromium, console_server.keys[(OWN, Role.AUDITOR)])
    chromium.open("/console/enrollment")
    assert "/.well-known/est" in chromium.text() and "Create" not in chromium.buttons()
    assert chromium.console_errors() == []

    log_in(chromium, console_server.keys[(OWN, Role.ADMIN)])
    chromium.open("/console/enrollment")
    chromium.fill("subject", "CN=browser-1")
    chromium.fill("domain", DOMAIN)
    chromium.submit("#create-registration", "/console/enrollment/registrations")
    secret = chromium.driver.find_element(By.ID, "secret").text
    assert len(secret) >= 20 and "Shown this once" in chromium.text()
    chromium.open("/console/enrollment")
    assert secret not in chromium.text()
    chromium.screenshot("enrollment")

    chosen = tmp_path / "registrations.csv"  # a file, as a spreadsheet saves it (BOM, CRLF)
    chosen.write_text("\ufeffauthority,profile,method,subject,domain\r\n" + "\r\n".join(
        f"operatorco-operations,operational,one-time-secret,CN=browser-csv-{n},{DOMAIN}"
        for n in range(3)), encoding="utf-8", newline="")
    chromium.driver.find_element(By.ID, "upload-file").send_keys(str(chosen))
    chromium.submit("#upload-csv", "/console/enrollment/upload")
    assert "3 registrations created" in chromium.text()
    bars = chromium.driver.find_elements(By.CSS_SELECTOR, "#progress progress")
    shown = [b.get_attribute("value") for b in bars if b.is_displayed()]
    assert shown == ["3"]  # the checking step's bar is hidden by the newest
    chromium.screenshot("enrollment-upload")
    assert chromium.console_errors() == []
