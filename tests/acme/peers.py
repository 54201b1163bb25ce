"""The shared real server of the ACME peer tests (certbot, lego): `iotpki serve` with its
HTTPS listener, ACME validation pointed at loopback ports the clients' solvers listen on,
and the PKI's root as the clients' trust anchor."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.app import PKI
from tests.acme.knot import Knot
from tests.conftest import IN_CI, last_audit_seq, shared_demo_pki
from tests.servers import ServerProcess, free_port

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"  # OperatorCo's operational domain (demo)
ZONES = (DOMAIN, "peers.example")  # served by the tests' Knot DNS


def require(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")
    if path is None:
        if IN_CI:
            pytest.fail(f"{tool} is not installed (scripts/system-packages.sh)")
        pytest.skip(f"{tool} is not installed")
    return path


@dataclass
class ACMEPeers:
    pki: PKI
    server: ServerProcess
    directory: Path
    root: Path  # the PEM the clients trust
    http01_port: int  # where the clients' http-01 solvers listen, and we connect
    tls_port: int  # where lego's tls-alpn-01 solver listens
    dns_port: int  # where the tests' DNS server listens
    knot: Knot  # the DNS server (dns-01)

    def url(self, label: str = "") -> str:
        return f"{self.server.https_url}/acme{'/' + label if label else ''}/directory"

    def eab(self, organization: str = "operatorco", label: str | None = None) -> tuple[str, str]:
        made = self.pki.acme_keys.create(organization, "test", label)
        return made.key_id, made.hmac_key

    def eab_raw(self, organization: str = "operatorco") -> tuple[str, bytes]:
        key_id, encoded = self.eab(organization)
        return key_id, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))

    def mark(self) -> int:
        return last_audit_seq(self.pki)

    def run(self, command: Sequence[str], env: dict[str, str], timeout: float = 180,
            ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(list(command), env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:  # the output says where it hung
            output = (exc.stdout or b"").decode() + (exc.stderr or b"").decode() \
                if isinstance(exc.stdout, bytes | None) else str(exc.stdout) + str(exc.stderr)
            return subprocess.CompletedProcess(list(command), -9, output, "timed out")


@pytest.fixture(scope="module")
def acme_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ACMEPeers]:
    """One `iotpki serve --https-port` for the module, on SQLite (the PostgreSQL path of the
    same code runs in the in-process tests)."""
    directory = tmp_path_factory.mktemp("acme-peers")
    http_port, https_port = free_port(), free_port()
    http01, tls, dns = free_port(), free_port(), free_port()
    environment = {"IOTPKI_ACME_HTTP_PORT": str(http01), "IOTPKI_ACME_TLS_PORT": str(tls),
                   "IOTPKI_ACME_CONNECT_ADDRESS": "127.0.0.1",
                   "IOTPKI_ACME_RESOLVER": f"127.0.0.1:{dns}"}
    with shared_demo_pki(request, directory, None, f"http://127.0.0.1:{http_port}",
                         **environment) as pki:
        root = directory / "root.pem"
        root.write_bytes(pki.authorities.get(CA).full_chain[-1].public_bytes(Encoding.PEM))
        knot = Knot(dns, directory / "knot", ZONES).start(require("knotd"))
        try:
            server = ServerProcess(pki.settings, http_port, https_port,
                                   log_path=directory / "server.log").start()
            try:
                yield ACMEPeers(pki, server, directory, root, http01, tls, dns, knot)
            finally:
                server.stop()
        finally:
            knot.stop()
