"""The REST API on the real HTTPS listener (`iotpki serve --https-port`), driven by curl:
an API key, a client-certificate principal (TLS client authentication, bound by subject and
issuing CA, or by fingerprint), the OpenAPI document and the interactive docs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.integration.principal import Role
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from tests.api.conftest import issue_operational
from tests.est.conftest import EST, start_server, write_trust_files
from tests.factories import domain_uri, make_csr
from tests.servers import free_port

DOMAIN = "building-42.operator.example"


@pytest.fixture
def database_url() -> None:
    return None  # one real server on SQLite; the handlers are tested on both in process


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ports: tuple[int, int]) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    return Settings(data_dir=tmp_path / "data", public_url=f"http://127.0.0.1:{ports[0]}")


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.body)  # type: ignore[no-any-return]


@pytest.fixture
def server(demo_pki: PKI, settings: Settings, ports: tuple[int, int],
           tmp_path: Path) -> Iterator[EST]:
    directory = tmp_path / "client"
    directory.mkdir()
    write_trust_files(demo_pki, directory)
    running = start_server(demo_pki, settings, ports, directory)
    try:
        yield running
    finally:
        running.stop()


def curl(server: EST, path: str, *args: str) -> Answer:
    out = server.dir / "body.out"
    done = subprocess.run(
        ["curl", "-sS", "--cacert", "root.pem", "-o", str(out), "-w",
         "%{http_code} %{content_type}", *args, f"https://127.0.0.1:{server.https_port}{path}"],
        cwd=server.dir, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    status, _, content_type = done.stdout.partition(" ")
    return Answer(int(status), content_type, out.read_bytes())


def client_certificate(pki: PKI, directory: Path, name: str,
                       profile: str = "operational") -> x509.Certificate:
    """A certificate and its key, as files curl presents (TLS client auth)."""
    csr, key = make_csr(name, sans=[domain_uri(DOMAIN)] if profile == "operational" else [])
    outcome = pki.issuance.issue(IssuanceRequest("operatorco-operations", profile, csr,
                                                 "test", method="cli"))
    assert isinstance(outcome, Issued)
    (directory / f"{name}.pem").write_bytes(outcome.certificate.public_bytes(
        serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return outcome.certificate


def test_api_key_and_documents_over_https(server: EST) -> None:
    pki = server.pki
    record = issue_operational(pki, "sensor-5")
    key = pki.principals.create_api_key("operatorco", Role.AUDITOR, "crm", "test").api_key
    listed = curl(server, "/api/v1/certificates?status=good", "-H", f"Authorization: Bearer {key}")
    assert listed.status == 200 and listed.content_type == "application/json"
    assert record.serial_hex in {c["serial"] for c in listed.json()["items"]}
    anonymous = curl(server, "/api/v1/certificates")
    assert anonymous.status == 401 and anonymous.content_type == "application/problem+json"
    document = curl(server, "/api/v1/openapi.json")
    assert document.status == 200 and document.json()["openapi"].startswith("3.1")
    docs = curl(server, "/api/v1/docs")
    assert docs.status == 200 and b"swagger" in docs.body.lower()


def test_client_certificate_principals(server: EST) -> None:
    pki, directory = server.pki, server.dir
    # A device got an operational certificate with the subject before the binding existed:
    # it must not become the principal (issue 15 item 1).
    impostor = client_certificate(pki, directory, "crm-gateway")
    (directory / "impostor.pem").write_bytes(impostor.public_bytes(serialization.Encoding.PEM))
    (directory / "impostor.key").write_bytes((directory / "crm-gateway.key").read_bytes())
    by_subject = client_certificate(pki, directory, "crm-gateway", profile="api-client")
    pki.principals.create_certificate_principal(
        "operatorco", Role.AUDITOR, "gateway", "test", subject="CN=crm-gateway",
        authority="operatorco-operations")
    by_fingerprint = client_certificate(pki, directory, "dm-system")
    fingerprint = by_fingerprint.fingerprint(hashes.SHA256()).hex()
    pki.principals.create_certificate_principal("operatorco", Role.OPERATOR, "dm", "test",
                                                fingerprint=fingerprint)
    as_auditor = curl(server, "/api/v1/organizations", "--cert", "crm-gateway.pem", "--key",
                      "crm-gateway.key")
    assert as_auditor.status == 200, as_auditor.body
    assert [o["label"] for o in as_auditor.json()["items"]] == ["operatorco"]
    as_impostor = curl(server, "/api/v1/organizations", "--cert", "impostor.pem", "--key",
                       "impostor.key")
    assert as_impostor.status == 401, as_impostor.body
    path = f"/api/v1/certificates/operatorco-operations/{format(by_subject.serial_number, 'x')}"
    refused = curl(server, f"{path}/revoke", "--cert", "crm-gateway.pem", "--key",
                   "crm-gateway.key", "-H", "Content-Type: application/json", "--data", "{}")
    assert refused.status == 403  # an auditor reads only
    revoked = curl(server, f"{path}/revoke", "--cert", "dm-system.pem", "--key", "dm-system.key",
                   "-H", "Content-Type: application/json", "--data",
                   '{"reason": "cessationOfOperation"}')
    assert revoked.status == 200, revoked.body
    assert revoked.json()["status"] == "revoked"
    after = curl(server, "/api/v1/organizations", "--cert", "crm-gateway.pem", "--key",
                 "crm-gateway.key")
    assert after.status == 401  # its own certificate is revoked now
    assert after.content_type == "application/problem+json"
