"""The REST API on the real HTTPS listener (`iotpki serve --https-port`), driven by curl:
an API key, a client-certificate principal (TLS client authentication, bound by subject and
issuing CA, or by fingerprint), the OpenAPI document and the interactive docs; and the HTTPS
certificate replaced at once when the operator revokes it (issue 15 item 7), read from the
TLS handshake before and after. One server per database serves the module; the handlers
themselves are tested in process (`tests/api/conftest.py`)."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.integration.principal import Role
from iotpki.core.outcomes import Issued
from tests.api.conftest import issue_operational
from tests.conftest import shared_demo_pki
from tests.est.conftest import EST, start_server
from tests.factories import domain_uri, make_csr
from tests.servers import free_port

DOMAIN = "building-42.operator.example"


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.body)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def https_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[EST]:
    """The module's demo PKI behind one `iotpki serve --https-port`, looking up its HTTPS
    certificate's status every second."""
    directory = tmp_path_factory.mktemp("https")
    http_port, https_port = free_port(), free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{http_port}", IOTPKI_TLS_CHECK_SECONDS="1") as pki:
        (directory / "client").mkdir()
        shared = start_server(pki, pki.settings, (http_port, https_port), directory / "client")
        try:
            yield shared
        finally:
            shared.stop()


@pytest.fixture
def server(https_server: EST, tmp_path: Path) -> EST:
    return https_server.for_test(tmp_path)


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


def served(server: EST) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", server.https_port), timeout=10)
    return x509.load_pem_x509_certificate(pem.encode())


def test_revoked_https_certificate_is_replaced_at_once(server: EST) -> None:
    pki = server.pki
    before = served(server)
    record = pki.certificates.get_by_fingerprint(before.fingerprint(hashes.SHA256()).hex())
    pki.revocation.revoke(record.authority, record.serial, x509.ReasonFlags.key_compromise,
                          "cli", operator=True)
    deadline = time.monotonic() + 30
    after = served(server)
    while after == before and time.monotonic() < deadline:
        time.sleep(0.5)
        after = served(server)
    assert after != before, "the server still presents its revoked certificate"
    replacement = pki.certificates.get_by_fingerprint(after.fingerprint(hashes.SHA256()).hex())
    assert replacement.status is CertificateStatus.GOOD
    assert replacement.authority == record.authority
    assert pki.certificates.get_by_fingerprint(record.fingerprint).status is \
        CertificateStatus.REVOKED
    said = [e.record for e in pki.audit.entries(after=server.audit_after, limit=None)
            if e.record.action == "service.certificate.replace"]
    assert [s.details["revoked"] for s in said] == [record.fingerprint]
    assert said[0].details["replacement"] == replacement.fingerprint
    done = subprocess.run(  # a client trusting the CA only accepts the new one
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", "root.pem",
         f"https://127.0.0.1:{server.https_port}/api/v1/openapi.json"],
        cwd=server.dir, capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout == "200", done.stderr
