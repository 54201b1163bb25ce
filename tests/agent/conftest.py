"""A real `iotpki serve` (HTTP + HTTPS) for the agent's end-to-end tests, one per module
and database, and agent configurations pointing at it (each test has its own device
directory)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from iotpki.agent.config import AgentConfig, parse_config
from iotpki.agent.trust import certificate_fingerprint
from iotpki.app import PKI
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.names import parse_subject
from tests.conftest import shared_demo_pki
from tests.est.conftest import EST, start_server
from tests.servers import PASSPHRASE, free_port

CA = "operatorco-operations"
ROOT = "operatorco-root"
DOMAIN = "building-42.operator.example"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             ports: tuple[int, int]) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url=f"http://127.0.0.1:{ports[0]}")


@dataclass
class Servers:
    pki: PKI
    est: EST
    http_url: str
    https_url: str
    dir: Path

    @property
    def root(self) -> x509.Certificate:
        return self.pki.authorities.get(ROOT).certificate

    def secret_registration(self, name: str, authority: str = CA,
                            profile: str = "operational") -> tuple[str, str]:
        created = self.pki.registrations.create(RegistrationSpec(
            "operatorco", authority, profile, RegistrationMethod.ONE_TIME_SECRET,
            subject=parse_subject(f"CN={name}"), domain=DOMAIN), "operatorco:crm")
        assert created.secret is not None
        return created.registration.id, created.secret

    def config(self, name: str, protocol: str, enrollment: dict[str, str],
               **extra: Any) -> AgentConfig:
        url = self.https_url if protocol == "est" else f"{self.http_url}/.well-known/cmp"
        document: dict[str, Any] = {
            "directory": str(self.dir / name), "protocol": protocol, "url": url,
            "trust_anchors": [certificate_fingerprint(self.root)], "subject": f"CN={name}",
            "enrollment": enrollment, **extra}
        return parse_config(document)


@pytest.fixture(scope="module")
def agent_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[EST]:
    """The module's demo PKI behind one `iotpki serve --https-port`."""
    directory = tmp_path_factory.mktemp("agent-server")
    http_port, https_port = free_port(), free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{http_port}") as pki:
        shared = start_server(pki, pki.settings, (http_port, https_port), directory)
        try:
            yield shared
        finally:
            shared.stop()


@pytest.fixture
def servers(agent_server: EST, tmp_path: Path) -> Servers:
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    est = agent_server.for_test(client_dir)
    return Servers(est.pki, est, agent_server.server.url, agent_server.server.https_url,
                   tmp_path / "devices")
