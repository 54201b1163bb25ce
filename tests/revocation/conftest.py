"""Fixtures of the revocation tests: certificates issued by the demo operational CA."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from tests.conftest import key_settings
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
ROOT = "operatorco-root"
DOMAIN = "building-42.operator.example"

IssueFn = Callable[[str], Issued]


def issue_operational(pki: PKI, name: str) -> Issued:
    csr, _ = make_csr(name, [domain_uri(DOMAIN)])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(outcome, Issued), outcome
    return outcome


@pytest.fixture
def issue(demo_pki: PKI) -> IssueFn:
    return lambda name: issue_operational(demo_pki, name)


def revoke(pki: PKI, issued: Issued, reason: x509.ReasonFlags) -> None:
    pki.revocation.revoke(CA, issued.record.serial, reason, "test")


# -- a real server process ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             http_port: int, request: pytest.FixtureRequest) -> Settings:
    """As the suite's, with the public URL of the server these tests start."""
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url=f"http://127.0.0.1:{http_port}", **key_settings(request))


class Server:
    """`iotpki serve` in a child process on a loopback port, stopped at the end."""

    def __init__(self, settings: Settings, port: int, workers: int = 1) -> None:
        self.log_path = settings.data_dir.parent / f"server-{port}.log"
        command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(settings.data_dir),
                   "--public-url", settings.public_url]
        if settings.database_url:
            command += ["--database-url", settings.database_url]
        command += ["serve", "--http-port", str(port), "--workers", str(workers)]
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env={**os.environ, "PYTHONPATH": _pythonpath()},
                stdout=subprocess.DEVNULL, stderr=log)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ca/{CA}.crt", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"server at {self.url} not ready in {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _pythonpath() -> str:
    return os.pathsep.join(p for p in sys.path if p)


@pytest.fixture
def server(demo_pki: PKI, settings: Settings, http_port: int) -> Iterator[Server]:
    running = Server(settings, http_port)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def fetch(url: str, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, _lower(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}
