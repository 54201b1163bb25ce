"""The HTTPS listener's TLS context (`https_server.tls_context`), driven over memory BIOs as
the listener's event loop drives it: a client certificate issued by a hosted CA is taken
(an expired one too: the enrollment methods say why it is refused, RFC 7030 §3.3.2), one
from an unknown CA ends the handshake, and a TLS 1.3 client that reconnects with its
session ticket resumes, still presenting its certificate."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.https_server import prepare_tls, tls_context
from iotpki.settings import HANDOFF, Settings, worker_settings
from tests.factories import domain_uri, make_csr

DOMAIN = "building-42.operator.example"


@pytest.fixture
def server_context(demo_pki: PKI, settings: Settings,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[ssl.SSLContext]:
    files = prepare_tls(demo_pki, ["127.0.0.1"])
    monkeypatch.setenv(HANDOFF, dataclasses.replace(settings, tls=files).handoff())
    worker_settings.cache_clear()  # read once per process: this test's
    try:
        yield tls_context(None, ssl.create_default_context)  # type: ignore[arg-type]
    finally:
        worker_settings.cache_clear()


def _client(pki: PKI, directory: Path, key: object, certificate: x509.Certificate) -> ssl.SSLContext:
    path = directory / "client.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata="".join(  # whichever CA issued the server's
        a.certificate.public_bytes(serialization.Encoding.PEM).decode()
        for a in pki.authorities.list()))
    context.load_cert_chain(path)
    return context


def _issued(pki: PKI, name: str) -> tuple[object, x509.Certificate]:
    csr, key = make_csr(name, sans=[domain_uri(DOMAIN)])
    outcome = pki.issuance.issue(IssuanceRequest("operatorco-operations", "operational", csr,
                                                 "test"))
    assert isinstance(outcome, Issued)
    return key, outcome.certificate


def _connect(server: ssl.SSLContext, client: ssl.SSLContext,
             session: ssl.SSLSession | None = None) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """(server side, client side) after the handshake and one byte each way (a TLS 1.3
    server sends its tickets after the handshake: the client has them after reading)."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    ours = server.wrap_bio(to_server, to_client, server_side=True)
    theirs = client.wrap_bio(to_client, to_server, server_hostname="127.0.0.1",
                             session=session)
    done = [False, False]
    for _ in range(10):
        for index, side in enumerate((theirs, ours)):
            if not done[index]:
                try:
                    side.do_handshake()
                    done[index] = True
                except ssl.SSLWantReadError:
                    pass
    assert all(done)
    theirs.write(b"?")
    assert ours.read(1) == b"?"
    ours.write(b"!")
    assert theirs.read(1) == b"!"
    return ours, theirs


def test_a_hosted_ca_client_certificate_is_taken_and_resumes(
        demo_pki: PKI, server_context: ssl.SSLContext, tmp_path: Path) -> None:
    key, certificate = _issued(demo_pki, "sensor-21")
    client = _client(demo_pki, tmp_path, key, certificate)
    ours, theirs = _connect(server_context, client)
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert ours.version() == "TLSv1.3" and ours.getpeercert(binary_form=True) == der
    assert theirs.session is not None and theirs.session.has_ticket
    again, resumed = _connect(server_context, client, theirs.session)
    assert resumed.session_reused and again.session_reused
    assert again.getpeercert(binary_form=True) == der  # the identity survives resumption


def test_an_expired_client_certificate_passes_the_handshake(
        demo_pki: PKI, server_context: ssl.SSLContext, tmp_path: Path) -> None:
    key, certificate = _issued(demo_pki, "sensor-22")
    issuer = demo_pki.authorities.get("operatorco-operations")
    ca_key = demo_pki.keys.load(issuer.key_ref)  # type: ignore[arg-type]
    expired = (x509.CertificateBuilder().subject_name(certificate.subject)
               .issuer_name(certificate.issuer).public_key(certificate.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(certificate.not_valid_before_utc - timedelta(days=400))
               .not_valid_after(certificate.not_valid_before_utc - timedelta(days=1))
               .sign(ca_key, hashes.SHA256()))
    ours, _ = _connect(server_context, _client(demo_pki, tmp_path, key, expired))
    assert ours.getpeercert(binary_form=True) == expired.public_bytes(
        serialization.Encoding.DER)


def test_a_client_certificate_of_an_unknown_ca_ends_the_handshake(
        demo_pki: PKI, server_context: ssl.SSLContext, tmp_path: Path) -> None:
    key, certificate = _issued(demo_pki, "sensor-23")
    self_signed = (x509.CertificateBuilder().subject_name(certificate.subject)
                   .issuer_name(certificate.subject).public_key(certificate.public_key())
                   .serial_number(1).not_valid_before(certificate.not_valid_before_utc)
                   .not_valid_after(certificate.not_valid_after_utc)
                   .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    with pytest.raises(ssl.SSLError):
        _connect(server_context, _client(demo_pki, tmp_path, key, self_signed))
