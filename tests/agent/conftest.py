"""A real `iotpki serve` (HTTP + HTTPS) for the agent's end-to-end tests, and agent
configurations pointing at it."""

from __future__ import annotations

import os
import subprocess
import sys
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
from tests.est.conftest import EST, _wait_listening, free_port, write_trust_files

CA = "operatorco-operations"
ROOT = "operatorco-root"
DOMAIN = "building-42.operator.example"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             ports: tuple[int, int]) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
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


def start_server(pki: PKI, settings: Settings, ports: tuple[int, int], directory: Path,
                 *extra: str) -> EST:
    """As tests/est's, with a patient wait: on a loaded machine a start takes minutes."""
    log = directory / "server.log"
    command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(settings.data_dir),
               "--public-url", settings.public_url]
    if settings.database_url:
        command += ["--database-url", settings.database_url]
    command += ["serve", "--http-port", str(ports[0]), "--https-port", str(ports[1]), *extra]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, env={
            **os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    server = EST(pki, directory, ports[1], process, log)
    _wait_listening(server, ports, timeout=240)
    return server


@pytest.fixture
def servers(demo_pki: PKI, settings: Settings, ports: tuple[int, int],
            tmp_path: Path) -> Iterator[Servers]:
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    write_trust_files(demo_pki, client_dir)
    est = start_server(demo_pki, settings, ports, client_dir)
    try:
        yield Servers(demo_pki, est, f"http://127.0.0.1:{ports[0]}",
                      f"https://127.0.0.1:{ports[1]}", tmp_path / "devices")
    finally:
        est.stop()
