"""The exact bytes of EST answers on the socket (RFC 7030 §4, RFC 8951 §3, RFC 9112 §4,
RFC 2046 §5.1.1), read with a raw TLS socket from a real `iotpki serve`: the status line,
canonically cased header names (deployed clients compare `Content-Type`, `Content-Length`,
`Content-Transfer-Encoding` and `WWW-Authenticate` case-sensitively), the set of header
names, header values, base64 in 64-character lines, CRLF framing of the serverkeygen
multipart (plain and §4.4.2 encrypted). Every operation (cacerts, csrattrs, simpleenroll,
simplereenroll, serverkeygen) and every answer kind: 200, 202 + Retry-After, 400, 401
(empty challenge), 403, 404, 405, 413, 415. The plain-HTTP listener's CRL, OCSP and CMP
answers get the same header casing. One server for the module: starting `serve` is the
slow part."""

from __future__ import annotations

import base64
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from iotpki.http_protocol import canonical_name
from iotpki.wire.est_keygen import ASYMMETRIC_DECRYPT_KEY_ID, SERVER_GENERATED_KEY
from iotpki.wire.keys import generate_private_key
from tests.est.conftest import DOMAIN, EST
from tests.est.multipart_peer import base64_content, strict_parts
from tests.factories import domain_uri, make_csr
from tests.supply_chain.story import DEVICE_TARGET, make_chip, ship

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


TEXT = b"text/plain; charset=utf-8"


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


def _names(raw: Raw) -> set[bytes]:
    """The header names of an answer (each once), `Connection: close` as asked."""
    names = [name for name, _ in raw.headers]
    assert len(names) == len(set(names)) and raw.header(b"Connection") == b"close"
    return set(names) - {b"Connection"}


def _text(raw: Raw, status_line: bytes, reason: bytes) -> None:
    """A refusal as RFC 7030 §4.2.3 has it: the status, text/plain, `<reason>: ...` + LF."""
    assert raw.status_line == status_line, raw.body
    assert raw.header(b"Content-Type") == TEXT
    assert _names(raw) == {b"Date", b"Server", b"Content-Type", b"Content-Length"}
    assert raw.body.startswith(reason + b": ") and raw.body.endswith(b"\n")
    assert raw.body.count(b"\n") == 1


def _multipart_lines(content_type: bytes, body: bytes) -> list[bytes]:
    """RFC 2046 §5.1.1: every line of the multipart ends in CRLF; base64 lines hold 64
    characters at most. Returns the part headers' Content-Type values."""
    boundary = content_type.split(b"boundary=")[1]
    assert body.endswith(b"--" + boundary + b"--\r\n")
    lines = body[:-2].split(b"\r\n")
    assert not any(b"\n" in line or b"\r" in line for line in lines)
    types = [line.split(b": ", 1)[1] for line in lines if line.startswith(b"Content-Type: ")]
    content = [line for line in lines if line and not line.startswith((b"--", b"Content-"))]
    assert content and all(len(line) <= 64 for line in content)
    return types


def _chip_context(est: EST, tls_root: Path) -> tuple[ssl.SSLContext, x509.Certificate]:
    chip = make_chip(est.pki, 21)
    ship(est.pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    (est.dir / "chip21.pem").write_bytes(chip.chain[0].public_bytes(Encoding.PEM))
    (est.dir / "chip21.key").write_bytes(chip.key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(cafile=str(tls_root))
    context.load_cert_chain(str(est.dir / "chip21.pem"), str(est.dir / "chip21.key"))
    return context, chip.chain[0]


def test_every_other_est_answer_byte_for_byte(est: EST) -> None:
    """202 + Retry-After, 403, 404 for an unknown operation, 413, simplereenroll with the
    TLS client certificate, the §4.4.2 encrypted serverkeygen, csrattrs of a label, and
    serverkeygen's 401 where a server-made key would otherwise wait for an operator."""
    root = est.dir / "root.pem"
    plain_tls = ssl.create_default_context(cafile=str(root))
    port = est.https_port

    def send(raw_request: bytes, tls: ssl.SSLContext = plain_tls) -> Raw:
        return exchange(port, raw_request, tls)

    # §3.2.3 then §4.2.3 on "components" (one-time-secret, manual-approval)
    csr_body = base64.encodebytes(make_csr("chip-raw")[0])
    path = "/.well-known/est/components/simpleenroll"
    challenge = send(request("POST", path, csr_body, "application/pkcs10"))
    assert challenge.status_line == b"HTTP/1.1 401 Unauthorized" and challenge.body == b""
    assert challenge.header(b"WWW-Authenticate") == b'Basic realm="iotpki EST", charset="UTF-8"'
    assert _names(challenge) == {b"Date", b"Server", b"WWW-Authenticate", b"Content-Length"}
    accepted = send(request("POST", path, csr_body, "application/pkcs10"))
    assert accepted.status_line == b"HTTP/1.1 202 Accepted", accepted.body
    assert accepted.header(b"Retry-After") == b"60"
    assert _names(accepted) == {b"Date", b"Server", b"Content-Length", b"Retry-After"}
    assert accepted.header(b"Content-Length") == b"0" and accepted.body == b""
    keygen_wait = send(request("POST", "/.well-known/est/components/serverkeygen", csr_body,
                               "application/pkcs10"))
    assert keygen_wait.status_line == b"HTTP/1.1 401 Unauthorized" and keygen_wait.body == b""

    # 200 simpleenroll, then 403 for the used registration, then simplereenroll over TLS
    registration, secret = est.secret_registration("CN=sensor-raw")
    key = generate_private_key("ec-p256")
    csr = base64.encodebytes(make_csr("sensor-raw", [domain_uri(DOMAIN)], key=key)[0])
    enrolled = send(request("POST", "/.well-known/est/simpleenroll", csr, "application/pkcs10",
                            _basic(registration, secret)))
    assert enrolled.status_line == b"HTTP/1.1 200 OK", enrolled.body
    certificate = pkcs7.load_der_pkcs7_certificates(_base64_lines(enrolled.body))[0]
    consumed = send(request("POST", "/.well-known/est/simpleenroll", csr, "application/pkcs10",
                            _basic(registration, secret)))
    _text(consumed, b"HTTP/1.1 403 Forbidden", b"registration-consumed")

    (est.dir / "raw.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (est.dir / "raw.key").write_bytes(key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    holder = ssl.create_default_context(cafile=str(root))
    holder.load_cert_chain(str(est.dir / "raw.pem"), str(est.dir / "raw.key"))
    renewal = base64.encodebytes(make_csr("sensor-raw", [domain_uri(DOMAIN)])[0])
    renewed = send(request("POST", "/.well-known/est/simplereenroll", renewal,
                           "application/pkcs10"), holder)
    assert renewed.status_line == b"HTTP/1.1 200 OK", renewed.body
    assert renewed.header(b"Content-Type") == b"application/pkcs7-mime; smime-type=certs-only"
    assert renewed.header(b"Content-Transfer-Encoding") == b"base64"
    assert _names(renewed) == {b"Date", b"Server", b"Content-Type",
                                    b"Content-Transfer-Encoding", b"Content-Length"}
    _base64_lines(renewed.body)
    mismatch = base64.encodebytes(make_csr("someone-else", [domain_uri(DOMAIN)])[0])
    _text(send(request("POST", "/.well-known/est/simplereenroll", mismatch,
                       "application/pkcs10"), holder),
          b"HTTP/1.1 403 Forbidden", b"identity-mismatch")

    # §4.4.2: the key enveloped to the TLS client certificate
    chip_tls, chip = _chip_context(est, root)
    ski = chip.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    keygen_csr = (x509.CertificateSigningRequestBuilder()
                  .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-21")]))
                  .add_attribute(ASYMMETRIC_DECRYPT_KEY_ID, ski, _tag=_ASN1Type.OctetString)
                  .sign(generate_private_key("ec-p256"), hashes.SHA256()))
    keygen = send(request("POST", "/.well-known/est/devices/serverkeygen",
                          base64.encodebytes(keygen_csr.public_bytes(Encoding.DER)),
                          "application/pkcs10"), chip_tls)
    assert keygen.status_line == b"HTTP/1.1 200 OK", keygen.body
    assert keygen.header(b"Cache-Control") == b"no-store"
    assert _names(keygen) == {b"Date", b"Server", b"Content-Type", b"Content-Length",
                              b"Cache-Control"}
    content_type = keygen.header(b"Content-Type")
    assert re.fullmatch(rb"multipart/mixed; boundary=est-[0-9a-f]{24}", content_type)
    assert _multipart_lines(content_type, keygen.body) == [
        SERVER_GENERATED_KEY.encode(), b"application/pkcs7-mime; smime-type=certs-only"]
    assert [len(base64_content(p)) > 0 for p in strict_parts(content_type.decode(),
                                                             keygen.body)] == [True, True]

    # csrattrs of a label; 404 unknown operation; 413 body too large; 400 no CSR
    attributes = send(request("GET", "/.well-known/est/devices/csrattrs"))
    assert attributes.status_line == b"HTTP/1.1 200 OK"
    assert attributes.header(b"Content-Type") == b"application/csrattrs"
    _base64_lines(attributes.body)
    unknown = send(request("GET", "/.well-known/est/nosuchoperation"))
    assert unknown.status_line == b"HTTP/1.1 404 Not Found"
    assert unknown.header(b"Content-Type") == TEXT
    assert unknown.body == b"unknown EST operation 'nosuchoperation'\n"
    large = send(request("POST", "/.well-known/est/simpleenroll", b"A" * (64 * 1024 + 4),
                         "application/pkcs10", _basic(registration, secret)))
    assert large.status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert large.header(b"Content-Type") == TEXT
    empty = send(request("POST", "/.well-known/est/simpleenroll", b"", "application/pkcs10",
                         _basic(registration, secret)))
    assert empty.status_line == b"HTTP/1.1 400 Bad Request"
    assert empty.header(b"Content-Type") == TEXT
