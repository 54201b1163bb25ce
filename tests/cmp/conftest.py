"""Fixtures of the CMP tests: a real `iotpki serve` process and the `openssl cmp` client.

`scene`: the module's demo PKI and server (one per module and database), a directory of
the test's own, and the audit log from the test's start. `private_scene`: a server of the
test's own, for tests that change its environment or profile file before it starts.
`app_scene`: the same without a socket, for requests from our own encoder (no peer): the
plain-HTTP application in process (`InProcessServer`); `Scene.post` sends either way."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.app import PKI, http_app
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import Lab, build_lab
from tests.conftest import key_settings, last_audit_seq, shared_demo_pki
from tests.servers import PASSPHRASE, InProcessApp, ServerProcess, free_port

CA = "operatorco-operations"
ROOT = "operatorco-root"
DOMAIN = "building-42.operator.example"
CHECK_AFTER = ("IOTPKI_CMP_CHECK_AFTER", "1")  # the polling test waits one second


@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             http_port: int, request: pytest.FixtureRequest) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv(*CHECK_AFTER)
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url=f"http://127.0.0.1:{http_port}", **key_settings(request))


@pytest.fixture
def server(demo_pki: PKI, settings: Settings, http_port: int) -> Iterator[ServerProcess]:
    """A server of the test's own, on the test's `demo_pki`."""
    running = ServerProcess(settings, http_port).start()
    try:
        yield running
    finally:
        running.stop()


def write_pem(path: Path, *certificates: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return path


def write_key(path: Path, key: object) -> Path:
    path.write_bytes(key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return path


class InProcessServer:
    """Stands in for `ServerProcess` where the socket adds nothing: `app.http_app` (CMP,
    OCSP, CRLs) in process (`tests.servers.InProcessApp`); no background workers."""

    def __init__(self, pki: PKI) -> None:
        self._app = InProcessApp(http_app(pki, background=False), "http://cmp.test")
        self.url = self._app.url

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        answer = self._app.request("POST", path, body, {"Content-Type": content_type})
        return answer.status_code, answer.headers.get("content-type", ""), answer.content

    def stop(self) -> None:
        self._app.stop()


@dataclass
class Scene:
    """The demo PKI behind a running server (or in process), and a directory for openssl's
    files."""

    pki: PKI
    server: ServerProcess | InProcessServer
    dir: Path
    audit_after: int = 0  # the audit sequence number this test started from

    def post(self, body: bytes, label: str = "", content_type: str = "application/pkixcmp"
             ) -> tuple[int, str, bytes]:
        """One CMP request over HTTP (RFC 6712): (status, content type, body)."""
        path = "/.well-known/cmp" + (f"/p/{label}" if label else "")
        if isinstance(self.server, InProcessServer):
            return self.server.post(path, body, content_type)
        return post_cmp(self.server.url + path, body, content_type)

    def url_args(self, label: str = "") -> list[str]:
        path = ".well-known/cmp" + (f"/p/{label}" if label else "")
        return ["-server", self.server.url.removeprefix("http://"), "-path", path]

    def cmp(self, *args: str, label: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["openssl", "cmp", *self.url_args(label), *args], cwd=self.dir,
                              capture_output=True, text=True, timeout=60, check=False)
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def verify(self, cert: str, root: str = "root.pem", chain: str = "chain.pem") -> None:
        done = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", chain, cert],
                              cwd=self.dir, capture_output=True, text=True, timeout=30,
                              check=False)
        assert done.returncode == 0 and ": OK" in done.stdout, done.stdout + done.stderr

    def certificate(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.dir / name).read_bytes())

    def secret_registration(self, subject: str = "CN=sensor-7", **changes: object) -> tuple[str, str]:
        spec = RegistrationSpec("operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
                                subject=parse_subject(subject), domain=DOMAIN, **changes)  # type: ignore[arg-type]
        created = self.pki.registrations.create(spec, "operatorco:crm")
        assert created.secret is not None
        return created.registration.id, created.secret

    def new_key(self, name: str) -> str:
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", name], cwd=self.dir, check=True,
                       capture_output=True, timeout=30)
        return name

    def audit(self, action: str) -> list[dict[str, object]]:
        """The audit entries of `action` since this test started."""
        return [{"outcome": e.record.outcome, "actor": e.record.actor, "target": e.record.target,
                 **e.record.details}
                for e in self.pki.audit.entries(after=self.audit_after, limit=None)
                if e.record.action == action]

    def for_test(self, directory: Path) -> Scene:
        chain = self.pki.authorities.get(CA).full_chain
        write_pem(directory / "root.pem", chain[-1])
        write_pem(directory / "chain.pem", *chain[:-1])
        return replace(self, dir=directory, audit_after=last_audit_seq(self.pki))


@pytest.fixture(scope="module")
def cmp_server(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[Scene]:
    """The module's demo PKI behind one `iotpki serve`."""
    directory = tmp_path_factory.mktemp("cmp")
    port = free_port()
    with shared_demo_pki(request, directory, module_database_url, f"http://127.0.0.1:{port}",
                         **{CHECK_AFTER[0]: CHECK_AFTER[1]}) as pki:
        running = ServerProcess(pki.settings, port).start()
        try:
            yield Scene(pki, running, directory)
        finally:
            running.stop()


@pytest.fixture
def scene(cmp_server: Scene, tmp_path: Path) -> Scene:
    return cmp_server.for_test(tmp_path)


@pytest.fixture(scope="module")
def cmp_app(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Scene]:
    """The module's demo PKI with the plain-HTTP application in process."""
    directory = tmp_path_factory.mktemp("cmp-app")
    with shared_demo_pki(request, directory, module_database_url, "http://cmp.test",
                         **{CHECK_AFTER[0]: CHECK_AFTER[1]}) as pki:
        server = InProcessServer(pki)
        try:
            yield Scene(pki, server, directory)
        finally:
            server.stop()


@pytest.fixture
def app_scene(cmp_app: Scene, tmp_path: Path) -> Scene:
    return cmp_app.for_test(tmp_path)


@pytest.fixture
def private_scene(demo_pki: PKI, server: ServerProcess, tmp_path: Path) -> Scene:
    return Scene(demo_pki, server, tmp_path).for_test(tmp_path)


def post_cmp(url: str, body: bytes, content_type: str = "application/pkixcmp") -> tuple[int, str, bytes]:
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def error_failures(der: bytes) -> tuple[str, set[str]]:
    """(body type, PKIFailureInfo names) of an answer, read with pyasn1 alone (not our codec)."""
    from pyasn1.codec.der import decoder
    from pyasn1_alt_modules import rfc9480
    message, _ = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    kind = message["body"].getName()
    if kind != "error":
        return kind, set()
    bits = message["body"]["error"]["pKIStatusInfo"]["failInfo"]
    names = rfc9480.PKIFailureInfo.namedValues
    return kind, {name for name, bit in names.items() if len(bits) > bit and bits[bit]}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The RFC 9483 conformance harness (`tests.cmp.rfc9483`), one demo PKI per module."""
    yield from build_lab(tmp_path_factory.mktemp("rfc9483"))
