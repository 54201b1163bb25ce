"""Fixtures of the revocation tests: certificates issued by the demo operational CA, and a
real `iotpki serve`: `served` is one demo PKI and server per module and database (a module
whose tests take `server` sets `demo_pki` to the served PKI), `private_server` a server of
the test's own on the test's `demo_pki`."""

from __future__ import annotations

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
from tests.conftest import key_settings, shared_demo_pki
from tests.factories import domain_uri, make_csr
from tests.servers import PASSPHRASE, ServerProcess, free_port

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

@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             http_port: int, request: pytest.FixtureRequest) -> Settings:
    """As the suite's, with the public URL of the server these tests start."""
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url=f"http://127.0.0.1:{http_port}", **key_settings(request))


class Server(ServerProcess):
    """A `ServerProcess` spawned at construction; the caller waits for it (`wait_ready`)."""

    def __init__(self, settings: Settings, port: int, workers: int = 1) -> None:
        super().__init__(settings, port, workers=workers)
        self.spawn()


@pytest.fixture(scope="module")
def served(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[tuple[PKI, ServerProcess]]:
    """The module's demo PKI behind one `iotpki serve`."""
    directory = tmp_path_factory.mktemp("revocation")
    port = free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{port}") as pki:
        running = ServerProcess(pki.settings, port).start()
        try:
            yield pki, running
        finally:
            running.stop()


@pytest.fixture
def server(served: tuple[PKI, ServerProcess]) -> ServerProcess:
    return served[1]


@pytest.fixture
def private_server(demo_pki: PKI, settings: Settings, http_port: int) -> Iterator[ServerProcess]:
    running = ServerProcess(settings, http_port).start()
    try:
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
