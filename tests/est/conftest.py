"""A real `iotpki serve --https-port` process, and curl / openssl as the EST client.

No Python EST client sits in the request path: requests go out with curl, answers are
checked with openssl (base64, pkcs7 -print_certs, verify, asn1parse, pkey). The test
process only prepares data (authorities, registrations) through the core.

One demo PKI and one server serve a whole module (`est_server`, per database); each test
gets its own client directory and sees the audit log from its own start (`EST.refusals`).
A test that needs other server options starts its own with `start_server`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.names import parse_subject
from tests.conftest import key_settings, last_audit_seq, shared_demo_pki
from tests.servers import PASSPHRASE, ServerProcess, free_port

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             ports: tuple[int, int], request: pytest.FixtureRequest) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
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
    server: ServerProcess
    proxies: list[str] = field(default_factory=list)
    audit_after: int = 0  # the audit sequence number this test started from

    @property
    def https_port(self) -> int:
        return int(self.server.https_port or 0)

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
        """Device certificates of the CA. Its service certificates (OCSP signer, CMP
        protection) are left out: the shared server may issue one in the background."""
        return self.pki.certificates.find(CertificateQuery(authority=authority,
                                                           profile="operational", limit=1000))

    def refusals(self) -> list[dict[str, object]]:
        """The refusals audited since this test started."""
        return [dict(e.record.details)
                for e in self.pki.audit.entries(after=self.audit_after, limit=None)
                if e.record.outcome == "refused"]

    def for_test(self, directory: Path) -> EST:
        """This (shared) server seen from one test: its own client directory and audit mark."""
        write_trust_files(self.pki, directory)
        return replace(self, dir=directory, audit_after=last_audit_seq(self.pki))

    def stop(self) -> None:
        self.server.stop()


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
    """A server of the test's own (its options, its environment), with both listeners."""
    options: list[str] = []
    for proxy in proxies or ():
        options += ["--trusted-proxy", proxy]
    server = ServerProcess(settings, ports[0], ports[1], extra=(*options, *extra),
                           log_path=directory / "server.log").start()
    return EST(pki, directory, server, proxies or [])


def write_trust_files(pki: PKI, directory: Path) -> None:
    chain = pki.authorities.get(CA).full_chain
    (directory / "root.pem").write_bytes(chain[-1].public_bytes(Encoding.PEM))
    (directory / "sub.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))


@pytest.fixture(scope="module")
def est_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[EST]:
    """The module's demo PKI behind one `iotpki serve --https-port`."""
    directory = tmp_path_factory.mktemp("est")
    http_port, https_port = free_port(), free_port()
    with shared_demo_pki(request, directory, module_database_url,
                         f"http://127.0.0.1:{http_port}") as pki:
        (directory / "client").mkdir()
        add_bound_endpoint(pki.settings.data_dir)
        shared = start_server(pki, pki.settings, (http_port, https_port), directory / "client")
        try:
            yield shared
        finally:
            shared.stop()


def add_bound_endpoint(data_dir: Path) -> None:
    """The server's endpoints plus `bound`: one-time secrets with RFC 7030 §3.5 channel
    binding required (`channel_binding: true`); the other endpoints are the packaged ones."""
    path = data_dir / "endpoints.yaml"
    packaged = resources.files("iotpki").joinpath("data/endpoints.yaml")
    endpoints = yaml.safe_load(path.read_text() if path.exists() else packaged.read_text())
    endpoints["est"]["bound"] = {"authority": CA, "profile": "operational",
                                 "methods": ["one-time-secret"], "channel_binding": True}
    path.write_text(yaml.safe_dump(endpoints))


@pytest.fixture
def est(est_server: EST, tmp_path: Path) -> EST:
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    return est_server.for_test(client_dir)
