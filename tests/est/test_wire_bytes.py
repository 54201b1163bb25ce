"""The exact bytes of EST answers on the socket (RFC 7030 §4, RFC 8951 §3, RFC 9112 §4,
RFC 2046 §5.1.1), read with a raw TLS socket from a real `iotpki serve`: the status line,
canonically cased header names (deployed clients compare `Content-Type`, `Content-Length`,
`Content-Transfer-Encoding` and `WWW-Authenticate` case-sensitively), header values, base64
in 64-character lines, CRLF framing of the serverkeygen multipart. The plain-HTTP
listener's CRL, OCSP and CMP answers get the same header casing. One server for the
module's one walk through every answer: starting `serve` is the slow part."""

from __future__ import annotations

import base64
import re
import socket
import ssl
from dataclasses import dataclass

import pytest

from iotpki.http_protocol import canonical_name
from tests.est.conftest import EST
from tests.est.multipart_peer import base64_content, strict_parts
from tests.factories import make_csr

pytestmark = pytest.mark.interop

@dataclass
class Raw:
    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes:
        values = [v for n, v in self.headers if n == name]
        assert len(values) == 1, (name, self.headers)
        return values[0]


def exchange(port: int, request: bytes, tls: ssl.SSLContext | None) -> Raw:
    """Send one request with `Connection: close` and read the whole answer as bytes."""
    plain = socket.create_connection(("127.0.0.1", port), timeout=30)
    with tls.wrap_socket(plain, server_hostname="127.0.0.1") if tls else plain as stream:
        stream.sendall(request)
        data = b""
        while chunk := stream.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = [(n, v.strip()) for n, _, v in (line.partition(b":") for line in lines[1:])]
    raw = Raw(lines[0], headers, body)
    for name, _ in headers:  # every header name canonically cased
        assert name == canonical_name(name), (name, lines[0])
    if b"Content-Length" in [n for n, _ in headers]:
        assert int(raw.header(b"Content-Length")) == len(body)
    return raw


def request(method: str, path: str, body: bytes = b"", content_type: str | None = None,
            extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [line for line in extra.split("\n") if line]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _base64_lines(body: bytes) -> bytes:
    """RFC 8951 §3.2 as we send it: 64-character LF-terminated lines (the last shorter)."""
    assert body.endswith(b"\n") and b"\r" not in body
    lines = body[:-1].split(b"\n")
    assert all(len(line) == 64 for line in lines[:-1]) and 0 < len(lines[-1]) <= 64
    return base64.b64decode(b"".join(lines), validate=True)


def _basic(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_every_est_answer_byte_for_byte(est: EST) -> None:
    tls = ssl.create_default_context(cafile=str(est.dir / "root.pem"))
    port = est.https_port

    def send(raw_request: bytes) -> Raw:
        return exchange(port, raw_request, tls)

    cacerts = send(request("GET", "/.well-known/est/cacerts"))
    assert cacerts.status_line == b"HTTP/1.1 200 OK"
    assert cacerts.header(b"Content-Type") == b"application/pkcs7-mime; smime-type=certs-only"
    assert cacerts.header(b"Content-Transfer-Encoding") == b"base64"
    assert _base64_lines(cacerts.body)[:1] == b"\x30"

    csrattrs = send(request("GET", "/.well-known/est/csrattrs"))
    assert csrattrs.status_line == b"HTTP/1.1 200 OK"
    assert csrattrs.header(b"Content-Type") == b"application/csrattrs"
    assert csrattrs.header(b"Content-Transfer-Encoding") == b"base64"
    _base64_lines(csrattrs.body)

    csr, _ = make_csr("sensor-9")
    csr_body = base64.encodebytes(csr)
    challenge = send(request("POST", "/.well-known/est/simpleenroll", csr_body,
                             "application/pkcs10"))
    assert challenge.status_line == b"HTTP/1.1 401 Unauthorized"
    assert challenge.header(b"WWW-Authenticate") == b'Basic realm="iotpki EST", charset="UTF-8"'
    assert challenge.header(b"Content-Length") == b"0" and challenge.body == b""

    registration, secret = est.secret_registration()
    wrong = send(request("POST", "/.well-known/est/simpleenroll", csr_body, "application/pkcs10",
                         _basic(registration, "not-the-secret")))
    assert wrong.status_line == b"HTTP/1.1 401 Unauthorized" and wrong.body == b""
    assert wrong.header(b"WWW-Authenticate").startswith(b"Basic realm=")

    enrolled = send(request("POST", "/.well-known/est/simpleenroll", csr_body,
                            "application/pkcs10", _basic(registration, secret)))
    assert enrolled.status_line == b"HTTP/1.1 200 OK", enrolled.body
    assert enrolled.header(b"Content-Type") == b"application/pkcs7-mime; smime-type=certs-only"
    assert enrolled.header(b"Content-Transfer-Encoding") == b"base64"
    _base64_lines(enrolled.body)

    reenroll = send(request("POST", "/.well-known/est/simplereenroll", csr_body,
                            "application/pkcs10"))
    assert reenroll.status_line == b"HTTP/1.1 401 Unauthorized" and reenroll.body == b""
    assert reenroll.header(b"WWW-Authenticate").startswith(b"Basic realm=")

    registration, secret = est.secret_registration("CN=sensor-keyless")
    keygen = send(request("POST", "/.well-known/est/serverkeygen", csr_body,
                          "application/pkcs10", _basic(registration, secret)))
    assert keygen.status_line == b"HTTP/1.1 200 OK", keygen.body
    content_type = keygen.header(b"Content-Type").decode()
    assert re.fullmatch(r"multipart/mixed; boundary=est-[0-9a-f]{24}", content_type)
    assert keygen.header(b"Cache-Control") == b"no-store"
    boundary = content_type.split("=")[1].encode()
    assert keygen.body.startswith(b"--" + boundary + b"\r\nContent-Type: application/pkcs8\r\n"
                                  b"Content-Transfer-Encoding: base64\r\n\r\n")
    assert b"\r\n--" + boundary + b"\r\nContent-Type: application/pkcs7-mime; " \
        b"smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\n" in keygen.body
    assert keygen.body.endswith(b"\r\n--" + boundary + b"--\r\n")
    assert [len(base64_content(p)) > 0 for p in strict_parts(content_type, keygen.body)] == \
        [True, True]

    malformed = send(request("POST", "/.well-known/est/simpleenroll", b"!!!!\n",
                             "application/pkcs10", _basic(registration, secret)))
    assert malformed.status_line == b"HTTP/1.1 400 Bad Request"
    assert malformed.header(b"Content-Type") == b"text/plain; charset=utf-8"
    media = send(request("POST", "/.well-known/est/simpleenroll", csr_body, "text/plain"))
    assert media.status_line == b"HTTP/1.1 415 Unsupported Media Type"
    method = send(request("GET", "/.well-known/est/simpleenroll"))
    assert method.status_line == b"HTTP/1.1 405 Method Not Allowed"
    assert method.header(b"Allow") == b"POST"
    unknown = send(request("GET", "/.well-known/est/nowhere/cacerts"))
    assert unknown.status_line == b"HTTP/1.1 404 Not Found"

    refused = send(request("POST", "/.well-known/est/components/simpleenroll", csr_body,
                           "application/pkcs10", _basic("no-such-registration", "x")))
    assert refused.status_line == b"HTTP/1.1 401 Unauthorized" and refused.body == b""

    _plain_listener_casing(est)


def _plain_listener_casing(est: EST) -> None:
    """CRL, OCSP and CMP on the plain-HTTP listener: the same canonical names."""
    http_port = int(est.pki.settings.public_url.rsplit(":", 1)[1])
    crl = exchange(http_port, request("GET", "/crl/operatorco-operations.crl"), None)
    assert crl.status_line == b"HTTP/1.1 200 OK"
    assert crl.header(b"Content-Type") == b"application/pkix-crl"
    ocsp = exchange(http_port, request("POST", "/ocsp/operatorco-operations", b"\x30\x00",
                                       "application/ocsp-request"), None)
    assert ocsp.header(b"Content-Type") == b"application/ocsp-response"
    cmp = exchange(http_port, request("POST", "/.well-known/cmp", b"\x30\x00",
                                      "application/pkixcmp"), None)
    assert cmp.header(b"Content-Type") == b"application/pkixcmp"
