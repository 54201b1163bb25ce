"""When the operator revokes the HTTPS certificate, the running server replaces it at once
and says so (issue 15 item 7), on SQLite and PostgreSQL: a real `iotpki serve
--https-port` process, the certificate read from the TLS handshake before and after, and
curl trusting only the CA."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.settings import Settings
from tests.conftest import key_settings
from tests.est.conftest import EST, start_server, write_trust_files
from tests.servers import free_port


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             ports: tuple[int, int], request: pytest.FixtureRequest) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    monkeypatch.setenv("IOTPKI_TLS_CHECK_SECONDS", "1")  # the server process inherits it
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url=f"http://127.0.0.1:{ports[0]}", **key_settings(request))


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
    said = [e.record for e in pki.audit.entries(limit=None)
            if e.record.action == "service.certificate.replace"]
    assert [s.details["revoked"] for s in said] == [record.fingerprint]
    assert said[0].details["replacement"] == replacement.fingerprint
    done = subprocess.run(  # a client trusting the CA only accepts the new one
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", "root.pem",
         f"https://127.0.0.1:{server.https_port}/api/v1/openapi.json"],
        cwd=server.dir, capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout == "200", done.stderr
