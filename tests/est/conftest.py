"""A real `iotpki serve --https-port` process, and curl / openssl as the EST client.

No Python EST client sits in the request path: requests go out with curl, answers are
checked with openssl (base64, pkcs7 -print_certs, verify, asn1parse, pkey). The test
process only prepares data (authorities, registrations) through the core.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.names import parse_subject
from tests.conftest import key_settings

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             ports: tuple[int, int], request: pytest.FixtureRequest) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url=f"http://127.0.0.1:{ports[0]}", **key_settings(request))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class EST:
    """The server under test and the files the client side works with."""

    pki: PKI
    dir: Path
    https_port: int
    process: subprocess.Popen[bytes]
    log: Path
    proxies: list[str] = field(default_factory=list)

    def url(self, operation: str, label: str = "", port: int | None = None,
            scheme: str = "https") -> str:
        middle = f"/{label}" if label else ""
        return f"{scheme}://127.0.0.1:{port or self.https_port}/.well-known/est{middle}/{operation}"

    def curl(self, operation: str, *args: str, label: str = "", body: Path | None = None,
             content_type: str | None = "application/pkcs10", url: str | None = None) -> Answer:
        command = ["curl", "-sS", "--cacert", str(self.dir / "root.pem"), "-D",
                   str(self.dir / "headers.txt"), "-o", str(self.dir / "body.out"), *args]
        if body is not None:
            command += ["--data-binary", f"@{body}"]
            if content_type is not None:
                command += ["-H", f"Content-Type: {content_type}"]
        command.append(url or self.url(operation, label))
        done = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=30,
                              check=False)
        assert done.returncode == 0, done.stderr
        return Answer(*_parse_headers((self.dir / "headers.txt").read_text()),
                      (self.dir / "body.out").read_bytes())

    def openssl(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(["openssl", *args], cwd=self.dir, input=stdin,
                              capture_output=True, timeout=30, check=False)
        assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
        return done.stdout.decode()

    def certificates_from(self, answer: Answer, name: str) -> str:
        """Decode a certs-only answer with openssl into `<name>.pem`; return the listing."""
        assert answer.status == 200, answer.body
        assert answer.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
        (self.dir / f"{name}.p7.b64").write_bytes(answer.body)
        self.openssl("base64", "-d", "-in", f"{name}.p7.b64", "-out", f"{name}.p7")
        self.openssl("pkcs7", "-inform", "DER", "-in", f"{name}.p7", "-print_certs",
                     "-out", f"{name}.pem")
        return self.openssl("pkcs7", "-inform", "DER", "-in", f"{name}.p7", "-print_certs",
                            "-noout")

    def verify(self, name: str) -> None:
        out = self.openssl("verify", "-CAfile", "root.pem", "-untrusted", "sub.pem", f"{name}.pem")
        assert f"{name}.pem: OK" in out

    def new_key_and_csr(self, name: str, subject: str, san: str | None = None) -> Path:
        """An EC key and its base64 DER CSR, made by openssl; returns the body file."""
        extra = ["-addext", f"subjectAltName={san}"] if san else []
        self.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", f"{name}.key", "-subj", subject, *extra,
                     "-outform", "DER", "-out", f"{name}.der")
        self.openssl("base64", "-in", f"{name}.der", "-out", f"{name}.b64")
        return self.dir / f"{name}.b64"

    def secret_registration(self, subject: str = "CN=sensor-9") -> tuple[str, str]:
        created = self.pki.registrations.create(RegistrationSpec(
            "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
            subject=parse_subject(subject), domain=DOMAIN), "operatorco:crm")
        assert created.secret is not None
        return created.registration.id, created.secret

    def issued(self, authority: str = CA) -> list[CertificateRecord]:
        return self.pki.certificates.find(CertificateQuery(authority=authority, limit=1000))

    def refusals(self) -> list[dict[str, object]]:
        return [dict(e.record.details) for e in self.pki.audit.entries(limit=None)
                if e.record.outcome == "refused"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _parse_headers(text: str) -> tuple[int, dict[str, str]]:
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    lines = blocks[-1].splitlines()
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def start_server(pki: PKI, settings: Settings, ports: tuple[int, int], directory: Path,
                 proxies: list[str] | None = None, extra: tuple[str, ...] = ()) -> EST:
    log = directory / "server.log"
    command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(settings.data_dir),
               "--public-url", settings.public_url]
    if settings.database_url:
        command += ["--database-url", settings.database_url]
    command += ["serve", "--http-port", str(ports[0]), "--https-port", str(ports[1])]
    for proxy in proxies or ():
        command += ["--trusted-proxy", proxy]
    command += extra
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": _pythonpath()},
                                   stdout=subprocess.DEVNULL, stderr=sink)
    server = EST(pki, directory, ports[1], process, log, proxies or [])
    _wait_listening(server, ports)
    return server


def _wait_listening(server: EST, ports: tuple[int, int], timeout: float = 120) -> None:
    # Generous: with other work on the machine, importing and starting two listeners is slow.
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()}")
        for port in list(pending):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    pending.discard(port)
        time.sleep(0.1)
    if pending:
        server.stop()
        raise TimeoutError(f"ports {pending} not listening: {server.log.read_text()}")


def _pythonpath() -> str:
    return os.pathsep.join(p for p in sys.path if p)


def write_trust_files(pki: PKI, directory: Path) -> None:
    chain = pki.authorities.get(CA).full_chain
    (directory / "root.pem").write_bytes(chain[-1].public_bytes(Encoding.PEM))
    (directory / "sub.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))


@pytest.fixture
def est(demo_pki: PKI, settings: Settings, ports: tuple[int, int],
        tmp_path: Path) -> Iterator[EST]:
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    write_trust_files(demo_pki, client_dir)
    server = start_server(demo_pki, settings, ports, client_dir)
    try:
        yield server
    finally:
        server.stop()
