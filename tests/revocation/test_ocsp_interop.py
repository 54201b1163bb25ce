"""Our OCSP responder (RFC 6960, RFC 5019) against peers we did not write: the `openssl ocsp`
client over POST and GET, pkilint's `lint_ocsp_response`, pyhanko-certvalidator; and the
server's behaviour with bad input."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from iotpki.app import PKI
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.status import CRLKind
from tests.revocation.conftest import CA, ROOT, IssueFn, fetch, revoke
from tests.servers import ServerProcess

pytestmark = pytest.mark.interop
UNKNOWN_SERIAL = 0x1234567890ABCDEF


@dataclass
class Scene:
    pki: PKI
    server: ServerProcess
    dir: Path
    certs: dict[str, Issued]

    def openssl(self, *args: str, verify: bool = True) -> str:
        done = subprocess.run(
            ["openssl", "ocsp", "-issuer", "sub.pem", "-CAfile", "root.pem",
             "-verify_other", "sub.pem", *args],
            cwd=self.dir, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        if verify:
            assert "Response verify OK" in done.stderr + done.stdout, done.stdout + done.stderr
        return done.stdout

    @property
    def ocsp_url(self) -> str:
        return f"{self.server.url}/ocsp/{CA}"


@pytest.fixture
def demo_pki(served: tuple[PKI, ServerProcess]) -> PKI:
    """The PKI behind the module's server (one per module and database)."""
    return served[0]


@pytest.fixture
def scene(demo_pki: PKI, issue: IssueFn, server: ServerProcess, tmp_path: Path) -> Scene:
    certs = {name: issue(name) for name in ("good", "revoked", "held", "released")}
    revoke(demo_pki, certs["revoked"], x509.ReasonFlags.key_compromise)
    revoke(demo_pki, certs["held"], x509.ReasonFlags.certificate_hold)
    revoke(demo_pki, certs["released"], x509.ReasonFlags.certificate_hold)
    demo_pki.revocation.release(CA, certs["released"].record.serial, "test")
    chain = demo_pki.authorities.get(CA).full_chain
    (tmp_path / "root.pem").write_bytes(chain[-1].public_bytes(Encoding.PEM))
    (tmp_path / "sub.pem").write_bytes(chain[0].public_bytes(Encoding.PEM))
    for name, issued in certs.items():
        (tmp_path / f"{name}.pem").write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    return Scene(demo_pki, server, tmp_path, certs)


EXPECTED = {"good": "good", "revoked": "revoked", "held": "revoked", "released": "good"}


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_openssl_post_reports_each_status(scene: Scene, nonce: bool) -> None:
    flags = [] if nonce else ["-no_nonce"]
    for name, status in EXPECTED.items():
        out = scene.openssl("-cert", f"{name}.pem", "-url", scene.ocsp_url, *flags)
        assert f"{name}.pem: {status}" in out, out
        if name == "held":
            assert "Reason: certificateHold" in out
        if name == "revoked":
            assert "Reason: keyCompromise" in out
    out = scene.openssl("-serial", hex(UNKNOWN_SERIAL), "-url", scene.ocsp_url, *flags)
    assert f"{hex(UNKNOWN_SERIAL)}: unknown" in out, out


def test_openssl_asks_about_several_certificates_in_one_request(scene: Scene) -> None:
    args = [a for name in EXPECTED for a in ("-cert", f"{name}.pem")]
    out = scene.openssl(*args, "-serial", hex(UNKNOWN_SERIAL), "-url", scene.ocsp_url)
    for name, status in EXPECTED.items():
        assert f"{name}.pem: {status}" in out, out
    assert f"{hex(UNKNOWN_SERIAL)}: unknown" in out


def get_response(scene: Scene, request_file: str) -> tuple[int, dict[str, str], bytes]:
    encoded = base64.b64encode((scene.dir / request_file).read_bytes()).decode()
    return fetch(f"{scene.ocsp_url}/{quote(encoded, safe='')}")


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_openssl_reads_our_answers_to_get_requests(scene: Scene, nonce: bool) -> None:
    flags = [] if nonce else ["-no_nonce"]
    for name, status in EXPECTED.items():
        scene.openssl("-cert", f"{name}.pem", "-reqout", f"{name}.req", *flags, verify=False)
        code, headers, body = get_response(scene, f"{name}.req")
        assert code == 200 and headers["content-type"] == "application/ocsp-response"
        (scene.dir / f"{name}.resp").write_bytes(body)
        # -no_nonce: openssl would otherwise compare with a new request of its own.
        out = scene.openssl("-cert", f"{name}.pem", "-no_nonce", "-respin", f"{name}.resp")
        assert f"{name}.pem: {status}" in out, out
        if nonce:
            assert nonce_of(scene.dir / f"{name}.req") == nonce_of_response(body)
            assert "max-age" not in headers.get("cache-control", "")
        else:
            assert "max-age=" in headers["cache-control"] and "etag" in headers


def nonce_of(request_file: Path) -> bytes:
    request = ocsp.load_der_ocsp_request(request_file.read_bytes())
    return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce


def nonce_of_response(body: bytes) -> bytes:
    response = ocsp.load_der_ocsp_response(body)
    return response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce


def ocsp_status(body: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(body).response_status


def test_bad_requests_get_ocsp_errors_not_error_pages(scene: Scene) -> None:
    code, _, body = fetch(scene.ocsp_url, data=b"not DER at all",
                          headers={"Content-Type": "application/ocsp-request"})
    assert code == 200 and ocsp_status(body) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    code, _, body = fetch(f"{scene.ocsp_url}/%%%not-base64")
    assert code == 200 and ocsp_status(body) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    code, _, body = fetch(scene.ocsp_url, data=b"")
    assert code == 200 and ocsp_status(body) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    good = scene.certs["good"]
    request = ocsp.OCSPRequestBuilder().add_certificate(
        good.certificate, good.chain[0], hashes.SHA1()).build().public_bytes(Encoding.DER)
    code, _, body = fetch(f"{scene.server.url}/ocsp/no-such-ca", data=request)
    assert code == 200 and ocsp_status(body) is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # The right serial but the root named as issuer: not this responder's business.
    wrong_issuer = ocsp.OCSPRequestBuilder().add_certificate(
        good.certificate, good.chain[1], hashes.SHA1()).build().public_bytes(Encoding.DER)
    code, _, body = fetch(scene.ocsp_url, data=wrong_issuer)
    assert code == 200 and ocsp_status(body) is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_server_survives_empty_connections_and_garbage(scene: Scene) -> None:
    port = int(scene.server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # opened and closed without a byte
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x00\xff garbage \r\n\r\n" + bytes(range(256)))
        raw.recv(4096)
    out = scene.openssl("-cert", "good.pem", "-url", scene.ocsp_url)
    assert "good.pem: good" in out
    assert scene.server.process.poll() is None


def current_crl(scene: Scene, name: str, number: int) -> tuple[dict[str, str], bytes]:
    """The server's CRL once it serves number `number` (nodes recheck every second)."""
    deadline = time.monotonic() + 20
    while True:
        code, headers, body = fetch(f"{scene.server.url}/crl/{name}.crl")
        assert code == 200 and headers["content-type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(body)
        if crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= number:
            return headers, body
        assert time.monotonic() < deadline, "the published CRL never reached the server"
        time.sleep(0.2)


def test_crl_and_ca_certificate_urls(scene: Scene) -> None:
    published = scene.pki.crls.publish(CA, [CRLKind.FULL, CRLKind.DELTA])
    headers, body = current_crl(scene, CA, published[0].info.number)
    crl = x509.load_der_x509_crl(body)
    assert crl.get_revoked_certificate_by_serial_number(scene.certs["revoked"].record.serial)
    assert {"etag", "last-modified", "cache-control"} <= set(headers)
    code, _, _ = fetch(f"{scene.server.url}/crl/{CA}.crl", headers={"If-None-Match":
                                                                    headers["etag"]})
    assert code == 304
    code, _, body = fetch(f"{scene.server.url}/crl/{CA}-delta.crl")
    assert code == 200
    assert x509.load_der_x509_crl(body).extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert fetch(f"{scene.server.url}/crl/no-such-ca.crl")[0] == 404
    code, headers, body = fetch(f"{scene.server.url}/ca/{CA}.crt")
    assert code == 200 and x509.load_der_x509_certificate(body) == scene.certs["good"].chain[0]


@pytest.mark.parametrize("name", ["good", "revoked"])
def test_pkilint_finds_no_error_in_our_responses(scene: Scene, name: str) -> None:
    scene.openssl("-cert", f"{name}.pem", "-url", scene.ocsp_url, "-respout", f"{name}.resp")
    done = subprocess.run(["lint_ocsp_response", "lint", "-s", "WARNING", f"{name}.resp"],
                          cwd=scene.dir, capture_output=True, text=True, timeout=60, check=False)
    assert "ERROR" not in done.stdout and "FATAL" not in done.stdout, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr


def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def validate(scene: Scene, name: str) -> None:
    issued = scene.certs[name]
    # pyhanko fetches OCSP and CDP CRLs itself, but not the delta CRL named by the root
    # CRL's freshest CRL pointer: hand it both of the root's CRLs from our server.
    root_crls = [fetch(f"{scene.server.url}/crl/{ROOT}{suffix}.crl")[2]
                 for suffix in ("", "-delta")]

    async def run() -> None:
        async with AIOHttpFetcherBackend() as fetchers:
            context = ValidationContext(trust_roots=[asn1(issued.chain[1])], fetchers=fetchers,
                                        allow_fetching=True,
                                        revocation_mode="require", crls=root_crls,
                                        # the answers are signed after `moment` was taken:
                                        # on a loaded machine more than the default 1 s later
                                        time_tolerance=timedelta(minutes=1))
            validator = CertificateValidator(asn1(issued.certificate),
                                             intermediate_certs=[asn1(issued.chain[0])],
                                             validation_context=context)
            await validator.async_validate_usage({"digital_signature"})

    asyncio.run(run())


def test_pyhanko_accepts_a_good_chain_and_rejects_a_revoked_one(scene: Scene) -> None:
    validate(scene, "good")
    validate(scene, "released")
    with pytest.raises(RevokedError):
        validate(scene, "revoked")
    with pytest.raises(RevokedError):
        validate(scene, "held")
