"""RFC 7030 §3.5 channel binding against a real `iotpki serve`, with CSRs made by
`openssl req` carrying the binding base64 in challengePassword, sent on the very connection
whose binding they carry:

- TLS 1.2, tls-unique (RFC 5929): the client reads it with Python's ssl;
- TLS 1.3, tls-exporter (RFC 9266): `openssl s_client -keymatexport EXPORTER-Channel-Binding
  -keymatexportlen 32` prints it, the CSR is made, and the request goes out through that
  s_client.

A value from another session is refused (403 possession-not-proven); an endpoint with
`channel_binding: true` (`bound`, on every EST module server) refuses requests without it."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import subprocess
from collections.abc import Callable

import pytest

from tests.est.conftest import EST

pytestmark = pytest.mark.interop


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


def test_channel_binding_tls_unique_and_tls_exporter(est: EST) -> None:
    """One server for both (starting it is the slow part)."""
    _tls_unique_over_tls12(est)
    _tls_exporter_over_tls13(est)


def _tls_unique_over_tls12(est: EST) -> None:
    tls12 = ssl.TLSVersion.TLSv1_2
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

    assert len(est.issued()) == before + 2
    reasons = [r["reason"] for r in est.refusals() if r.get("protocol") == "est"]
    assert reasons.count("possession-not-proven") == 2


def _request(label: str, csr_der: bytes, auth: tuple[str, str]) -> bytes:
    body = base64.encodebytes(csr_der)
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    path = f"/.well-known/est/{label}/simpleenroll" if label else "/.well-known/est/simpleenroll"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/pkcs10\r\nAuthorization: Basic {basic}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def s_client_enroll(est: EST, label: str, csr: Callable[[bytes], bytes],
                    auth: tuple[str, str]) -> tuple[int, bytes]:
    """One TLS 1.3 connection by `openssl s_client`: its tls-exporter value (RFC 9266) is
    read from s_client's output, `csr(value)` makes the CSR, the request goes out on it."""
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{est.https_port}", "-tls1_3",
         "-CAfile", str(est.dir / "root.pem"), "-keymatexport", "EXPORTER-Channel-Binding",
         "-keymatexportlen", "32", "-nocommands", "-ign_eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert client.stdout is not None
    exported = b""
    for line in client.stdout:
        if found := re.search(rb"Keying material: ([0-9A-F]{64})", line):
            exported = bytes.fromhex(found.group(1).decode())
            break
    assert exported, "s_client printed no keying material"
    output, _ = client.communicate(_request(label, csr(exported), auth), timeout=30)
    head, _, answer = output[output.index(b"HTTP/1.1 "):].partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), answer


def _tls_exporter_over_tls13(est: EST) -> None:
    before = len(est.issued())
    status, body = s_client_enroll(  # the binding of this very session: issued
        est, "bound", lambda value: openssl_csr(est, "exported", value),
        est.secret_registration())
    assert status == 200, body

    stale: list[bytes] = []  # a session's value, kept; its request (empty) is refused
    s_client_enroll(est, "", lambda value: stale.append(value) or b"", ("-", "-"))
    status, body = s_client_enroll(  # another session's value: refused
        est, "", lambda _: openssl_csr(est, "stale13", stale[0]), est.secret_registration())
    assert status == 403 and b"not the tls-exporter value of this TLS session" in body

    status, body = s_client_enroll(  # required by the label, missing: refused
        est, "bound", lambda _: openssl_csr(est, "none13", None), est.secret_registration())
    assert status == 403 and b"tls-exporter value in challengePassword" in body

    session = Session(est, ssl.TLSVersion.TLSv1_3)  # a tls-unique on TLS 1.3: refused
    status, body = session.enroll("", openssl_csr(est, "unique13", session.tls_unique()),
                                  est.secret_registration())
    assert status == 403 and b"tls-exporter" in body

    assert len(est.issued()) == before + 1
