"""The HTTPS listener's own certificate: issued from the `service` profile by the CA of the
unlabelled EST endpoint, or taken from configured files (--tls-cert / --tls-key)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.wire.keys import generate_private_key
from tests.est.conftest import start_server, write_trust_files

pytestmark = pytest.mark.interop


def test_issued_server_certificate_uses_the_service_profile(
        demo_pki: PKI, settings: Settings, ports: tuple[int, int], tmp_path: Path) -> None:
    write_trust_files(demo_pki, tmp_path)
    server = start_server(demo_pki, settings, ports, tmp_path)
    try:
        answer = server.curl("cacerts")
        assert answer.status == 200
    finally:
        server.stop()
    text = server.openssl("x509", "-in", str(settings.data_dir / "tls" / "server.pem"), "-noout",
                          "-issuer", "-ext", "subjectAltName,extendedKeyUsage")
    assert "OperatorCo Operational CA" in text and "IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    assert (settings.data_dir / "tls" / "server.key").stat().st_mode & 0o077 == 0


def test_configured_server_certificate_files(
        demo_pki: PKI, settings: Settings, ports: tuple[int, int], tmp_path: Path) -> None:
    key = generate_private_key("ec-p256")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "est.test")]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
           .sign(key, hashes.SHA256()))
    issued = demo_pki.issuance.issue(IssuanceRequest(
        "deviceco-devices", "service", csr.public_bytes(serialization.Encoding.DER), "test"))
    assert isinstance(issued, Issued), issued
    (tmp_path / "own.pem").write_bytes(b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in (issued.certificate, issued.chain[0])))
    (tmp_path / "own.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "root.pem").write_bytes(issued.chain[-1].public_bytes(serialization.Encoding.PEM))
    operator_root = demo_pki.authorities.get("operatorco-root").certificate
    (tmp_path / "operator-root.pem").write_bytes(operator_root.public_bytes(
        serialization.Encoding.PEM))
    server = start_server(demo_pki, settings, ports, tmp_path, extra=(
        "--tls-cert", str(tmp_path / "own.pem"), "--tls-key", str(tmp_path / "own.key")))
    try:
        assert server.curl("cacerts").status == 200  # verified against DeviceCo's root
        wrong = subprocess.run(
            ["curl", "-sS", "--cacert", str(tmp_path / "operator-root.pem"), server.url("cacerts")],
            capture_output=True, timeout=30, check=False)
        assert wrong.returncode != 0  # OperatorCo's CA does not vouch for it
    finally:
        server.stop()
