"""BouncyCastle's EST client (Debian libbcpkix-java 1.72: `org.bouncycastle.est`,
`JsseESTServiceBuilder`, `ESTService`) as an independent peer (DESIGN.md §6): cacerts over
TLS 1.2 and 1.3, csrattrs, simpleenroll with HTTP Basic (one-time secret) and with a
previous-stage TLS client certificate, refusal without credentials, simplereenroll with the
current certificate, serverkeygen, and manual approval: challenged first (401, RFC 7030
§3.2.3), queued when sent again without credentials (202), then the certificate, each time
a new CSR signed with the same key (§4.2.3). `tests/est/java/EstInterop.java` is compiled with javac
at test time; results are checked with openssl and in the store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.keys import generate_private_key
from tests.est.conftest import CA, EST
from tests.java import compile_java, java_command
from tests.supply_chain.story import DEVICE_TARGET, make_chip, ship

pytestmark = pytest.mark.interop
SOURCE = Path(__file__).parent / "java" / "EstInterop.java"


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_java(SOURCE, tmp_path_factory)


def bc(est: EST, classes: Path, op: str, out: str, *options: str, label: str = "-",
       tls: str = "TLS") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        java_command(classes, "EstInterop", f"127.0.0.1:{est.https_port}",
                     str(est.dir / "root.pem"), label, tls, op, out, *options),
        cwd=est.dir, capture_output=True, text=True, timeout=120, check=False)


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr


def _certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


@pytest.mark.parametrize("tls", ["TLSv1.2", "TLSv1.3"])
def test_cacerts(est: EST, classes: Path, tls: str) -> None:
    ok(bc(est, classes, "cacerts", "ca", tls=tls))
    assert set(_certificates(est.dir / "ca.pem")) == set(est.pki.authorities.get(CA).full_chain)


def test_csrattrs(est: EST, classes: Path) -> None:
    ok(bc(est, classes, "csrattrs", "attrs", label="devices"))
    oids = (est.dir / "attrs.txt").read_text().split()
    assert "1.2.840.10045.4.3.2" in oids  # ecdsa-with-SHA256, the profile's first key type


def test_simpleenroll_with_basic_auth_then_reenroll(est: EST, classes: Path) -> None:
    registration, secret = est.secret_registration("CN=sensor-bc")
    ok(bc(est, classes, "simpleenroll", "first", "--basic", f"{registration}:{secret}",
          "--subject", "CN=sensor-bc", tls="TLSv1.2"))
    first = _certificates(est.dir / "first.pem")[0]
    est.verify("first")
    assert est.pki.certificates.get_by_fingerprint(fingerprint(first)).authority == CA
    est.openssl("pkcs12", "-export", "-in", "first.pem", "-inkey", "first.key.pem",
                "-out", "first.p12", "-passout", "pass:bc-test")
    ok(bc(est, classes, "simplereenroll", "second", "--p12", "first.p12", "bc-test",
          "--subject", "CN=sensor-bc"))
    second = _certificates(est.dir / "second.pem")[0]
    assert second.subject == first.subject and second.public_key() != first.public_key()
    est.verify("second")


def test_simpleenroll_with_a_previous_stage_client_certificate(est: EST, classes: Path) -> None:
    chip = make_chip(est.pki, 7)
    ship(est.pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    (est.dir / "chip.pem").write_bytes(chip.chain[0].public_bytes(Encoding.PEM))
    (est.dir / "chip.key").write_bytes(chip.key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    est.openssl("pkcs12", "-export", "-in", "chip.pem", "-inkey", "chip.key", "-out",
                "chip.p12", "-passout", "pass:bc-test")
    ok(bc(est, classes, "simpleenroll", "device", "--p12", "chip.p12", "bc-test",
          "--subject", "CN=sensor-7", label="devices"))
    device = _certificates(est.dir / "device.pem")[0]
    assert est.pki.certificates.get_by_fingerprint(fingerprint(device)).authority == \
        "deviceco-devices"


def test_simpleenroll_without_credentials_is_refused(est: EST, classes: Path) -> None:
    before = len(est.issued())
    done = bc(est, classes, "simpleenroll", "nobody", "--subject", "CN=sensor-bc")
    assert done.returncode == 2 and "EST error 401" in done.stderr, done.stderr
    assert len(est.issued()) == before


def test_serverkeygen(est: EST, classes: Path) -> None:
    registration, secret = est.secret_registration("CN=sensor-bc")
    ok(bc(est, classes, "serverkeygen", "made", "--basic", f"{registration}:{secret}",
          "--subject", "CN=sensor-bc"))
    certificate = _certificates(est.dir / "made.pem")[0]
    key = serialization.load_pem_private_key((est.dir / "made.key.pem").read_bytes(), None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(Encoding.DER, public) == \
        certificate.public_key().public_bytes(Encoding.DER, public)


def test_manual_approval_after_the_challenge(est: EST, classes: Path) -> None:
    """"components" takes one-time secrets and manual approval. BouncyCastle without
    credentials: 401 (its ESTException), then the same key and subject again: 202 with
    Retry-After (not completed), one request queued; after the operator's approval the same
    again gets the certificate for that key. BouncyCastle signs a new CSR each run (ECDSA:
    other bytes); the server matches subject and public key."""
    key = generate_private_key("ec-p256")
    (est.dir / "chip-bc.key").write_bytes(key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    again = ("--key", "chip-bc.key", "--subject", "CN=chip-bc")
    challenged = bc(est, classes, "simpleenroll", "chip", *again, label="components")
    assert challenged.returncode == 2 and "EST error 401" in challenged.stderr, challenged.stderr
    for _ in range(2):
        pending = bc(est, classes, "simpleenroll", "chip", *again, label="components")
        assert pending.returncode == 3 and "retry after" in pending.stderr, pending.stderr
    queued = [p for p in est.pki.enrollment.approval.find(limit=1000)
              if x509.load_der_x509_csr(p.csr).subject.rfc4514_string() == "CN=chip-bc"]
    assert len(queued) == 1
    est.pki.enrollment.approval.approve(queued[0].id, "chipco:operator")
    ok(bc(est, classes, "simpleenroll", "chip", *again, label="components"))
    certificate = _certificates(est.dir / "chip.pem")[0]
    assert certificate.public_key() == key.public_key()
