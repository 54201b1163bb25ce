"""A real headless Chromium (Debian `chromium` + `chromium-driver`) driven by Selenium, for
the console's browser tests: it collects the browser console's messages so that a test
fails on any error (a script error, a refused style or resource, a failed request), and
saves screenshots into docs/console/ when `IOTPKI_SCREENSHOTS=1`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
IN_CI = os.environ.get("CI") == "true"


def chromium_available() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is missing (Debian packages chromium, chromium-driver)"
    return None


class Browser:
    def __init__(self, base_url: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"):
            options.add_argument(argument)
        options.accept_insecure_certs = True  # the test PKI's HTTPS certificate
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def fill(self, name: str, value: str) -> None:
        field = self.driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)

    def click(self, selector: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def submit(self, selector: str, then: str) -> None:
        """Click a form's button and wait until the browser shows the page `then` (a path
        prefix, before the query). The page clicked on must go first: `then` may be the
        path it already shows (an action that returns to its page), and reading the new
        page's elements from the old one, mid-navigation, fails under load."""
        self.driver.execute_script("window.iotpkiOldPage = true")  # gone with the page
        self.click(selector)
        WebDriverWait(self.driver, 10).until(
            lambda _: self.driver.execute_script("return window.iotpkiOldPage") is None
            and self.path.split("?")[0] == then
            and self.driver.execute_script("return document.readyState") == "complete")

    def buttons(self) -> list[str]:
        return [str(b.text) for b in self.driver.find_elements(By.TAG_NAME, "button")]

    def console_errors(self) -> list[dict[str, Any]]:
        """The console messages since the last call that are errors."""
        return [m for m in self.driver.get_log("browser") if m["level"] == "SEVERE"]

    def screenshot(self, name: str) -> None:
        if os.environ.get("IOTPKI_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(exist_ok=True)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(1280, min(max(int(height) + 40, 600), 2400))
            self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
            self.driver.set_window_size(1280, 1000)

    def close(self) -> None:
        self.driver.quit()


def need_chromium() -> None:
    reason = chromium_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI must run the browser tests)")
        pytest.skip(reason)
