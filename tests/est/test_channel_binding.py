"""RFC 7030 §3.5 channel binding against a real `iotpki serve`: the client reads its TLS
session's tls-unique (RFC 5929; Python's ssl on the client side), `openssl req` puts it
base64 into the CSR's challengePassword, and the CSR goes out on that same connection.
A value from another session is refused (403 possession-not-proven); an endpoint with
`channel_binding: true` refuses requests without it, and TLS 1.3 requests (Python's ssl
exports no tls-exporter, RFC 9266, so the server cannot check them)."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from iotpki.app import PKI
from iotpki.settings import Settings
from tests.est.conftest import CA, EST, start_server, write_trust_files

pytestmark = pytest.mark.interop


@pytest.fixture
def est(demo_pki: PKI, settings: Settings, ports: tuple[int, int],
        tmp_path: Path) -> Iterator[EST]:
    path = settings.data_dir / "endpoints.yaml"
    packaged = resources.files("iotpki").joinpath("data/endpoints.yaml")
    endpoints = yaml.safe_load(path.read_text() if path.exists() else packaged.read_text())
    endpoints["est"]["bound"] = {"authority": CA, "profile": "operational",
                                 "methods": ["one-time-secret"], "channel_binding": True}
    path.write_text(yaml.safe_dump(endpoints))
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    write_trust_files(demo_pki, client_dir)
    server = start_server(demo_pki, settings, ports, client_dir)
    try:
        yield server
    finally:
        server.stop()


class Session:
    """One TLS connection to the EST listener, pinned to a TLS version."""

    def __init__(self, est: EST, version: ssl.TLSVersion) -> None:
        context = ssl.create_default_context(cafile=str(est.dir / "root.pem"))
        context.minimum_version = context.maximum_version = version
        plain = socket.create_connection(("127.0.0.1", est.https_port), timeout=30)
        self.stream = context.wrap_socket(plain, server_hostname="127.0.0.1")
        self.est = est

    def tls_unique(self) -> bytes:
        value = self.stream.get_channel_binding("tls-unique")
        assert value
        return value

    def enroll(self, label: str, csr_der: bytes, auth: tuple[str, str]) -> tuple[int, bytes]:
        body = base64.encodebytes(csr_der)
        basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        path = f"/.well-known/est/{label}/simpleenroll" if label else \
            "/.well-known/est/simpleenroll"
        self.stream.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                             f"Content-Type: application/pkcs10\r\nAuthorization: Basic {basic}"
                             f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        data = b""
        while chunk := self.stream.recv(65536):
            data += chunk
        self.stream.close()
        head, _, answer = data.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), answer


def openssl_csr(est: EST, name: str, password: bytes | None) -> bytes:
    """A CSR made by `openssl req`, with challengePassword = base64(password) if given."""
    attributes = (f"[attrs]\nchallengePassword = {base64.b64encode(password).decode()}\n"
                  if password is not None else "[attrs]\n")
    (est.dir / f"{name}.cnf").write_text(
        "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
        f"[dn]\nCN = sensor-9\n{attributes}")
    est.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-config", f"{name}.cnf", "-outform", "DER",
                "-out", f"{name}.der")
    listing = est.openssl("req", "-inform", "DER", "-in", f"{name}.der", "-noout", "-text")
    assert ("challengePassword" in listing) == (password is not None), listing
    return (est.dir / f"{name}.der").read_bytes()


def test_tls_unique_binding_over_tls12_and_13(est: EST) -> None:
    tls12, tls13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
    before = len(est.issued())

    session = Session(est, tls12)  # the binding of this very session: issued
    status, body = session.enroll("", openssl_csr(est, "good", session.tls_unique()),
                                  est.secret_registration())
    assert status == 200, body

    other = Session(est, tls12)  # the binding of another session: refused
    stale = other.tls_unique()
    other.stream.close()
    session = Session(est, tls12)
    status, body = session.enroll("", openssl_csr(est, "stale", stale), est.secret_registration())
    assert status == 403 and b"not the tls-unique value of this TLS session" in body

    session = Session(est, tls12)  # required by the label, missing: refused
    status, body = session.enroll("bound", openssl_csr(est, "none", None),
                                  est.secret_registration())
    assert status == 403 and b"challengePassword" in body

    session = Session(est, tls12)  # required and right: issued
    status, body = session.enroll("bound", openssl_csr(est, "bound", session.tls_unique()),
                                  est.secret_registration())
    assert status == 200, body

    session = Session(est, tls13)  # TLS 1.3: cannot be checked, required: refused
    status, body = session.enroll("bound", openssl_csr(est, "tls13", b"\x00" * 32),
                                  est.secret_registration())
    assert status == 403 and b"TLS 1.2" in body

    session = Session(est, tls13)  # TLS 1.3, not required: the attribute is not checked
    status, body = session.enroll("", openssl_csr(est, "tls13-free", b"\x00" * 32),
                                  est.secret_registration())
    assert status == 200, body

    assert len(est.issued()) == before + 3
    reasons = [r["reason"] for r in est.refusals() if r.get("protocol") == "est"]
    assert reasons.count("possession-not-proven") == 3
