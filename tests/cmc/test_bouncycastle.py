"""BouncyCastle's CMC classes (Debian libbcpkix-java 1.72: `org.bouncycastle.asn1.cmc`,
CRMF `JcaCertificateRequestMessageBuilder`, PKCS #10, `CMSSignedDataGenerator`) as an
independent CMC client (tests/cmc/java/CmcInterop.java, compiled with javac at test time)
against one `iotpki serve` per module: enroll (PKCS #10 and CRMF, identity proof V2 with a
one-time secret; previous-stage certificate; manual approval then queryPending), renew
(signed by the current certificate), revoke (revokeRequest), and each failure BC can
provoke, over the RFC 5273 HTTP transport (`/cmc`) and EST's /fullcmc (RFC 7030 §4.3).
BC checks every answer: signature, id-kp-cmcCA signer chained to the root, PKIResponse.
All scenarios run in two JVM starts (before and after an operator approves)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from tests.est.conftest import EST, write_trust_files
from tests.java import compile_java, java_command
from tests.supply_chain.story import DEVICE_TARGET, make_chip, ship

pytestmark = pytest.mark.interop
SOURCE = Path(__file__).parent / "java" / "CmcInterop.java"
# CMCFailInfo (RFC 5272 §6.1.4), as BC prints them (the INTEGER)
BAD_ALG, BAD_MESSAGE_CHECK, BAD_REQUEST, BAD_TIME, BAD_CERT_ID = "0", "1", "2", "3", "4"
UNSUPPORTED_EXT, BAD_IDENTITY, POP_REQUIRED, POP_FAILED, NO_KEY_REUSE = "5", "7", "8", "9", "10"
AUTH_DATA_FAIL, TRY_LATER = "13", "12"
APPROVALS = 10  # Settings.approval_submissions_per_minute


@dataclass(frozen=True)
class Result:
    http: int
    status: str
    fail: str


@dataclass
class Run:
    est: EST
    results: dict[str, Result]
    output: str

    def __getitem__(self, name: str) -> Result:
        assert name in self.results, self.output
        return self.results[name]

    def certificate(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.est.dir / f"{name}.cert.pem").read_bytes())


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_java(SOURCE, tmp_path_factory)


def run_java(est: EST, classes: Path, scenarios: list[str]) -> tuple[dict[str, Result], str]:
    (est.dir / "scenarios.txt").write_text("\n".join(scenarios) + "\n")
    roots = {a.full_chain[-1] for a in est.pki.authorities.list() if a.full_chain}
    (est.dir / "roots.pem").write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in roots))
    done = subprocess.run(
        java_command(classes, "CmcInterop", f"http://127.0.0.1:{est.server.http_port}",
                     f"https://127.0.0.1:{est.https_port}", str(est.dir / "roots.pem"),
                     str(est.dir / "scenarios.txt")),
        cwd=est.dir, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    results = {}
    for line in done.stdout.splitlines():
        words = line.split()
        if words[0] == "RESULT" and words[2] != "error":
            results[words[1]] = Result(int(words[2]), words[3], words[4])
    return results, done.stdout


def _write(path: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _foreign(directory: Path) -> None:
    """A self-signed certificate nobody here issued (for badCertId)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=foreign")
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=1))
                   .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    _write(directory / "foreign", certificate, key)


@pytest.fixture(scope="module")
def first(cmc_server: EST, classes: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every scenario that needs no operator, in one JVM."""
    directory = tmp_path_factory.mktemp("bc-cmc")
    est = cmc_server.for_test(directory)
    secrets = {n: est.secret_registration(f"CN=cmc-bc-{n}") for n in range(1, 7)}
    chip = make_chip(est.pki, 71)
    ship(est.pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    _write(directory / "chip", chip.chain[0], chip.key)
    _foreign(directory)

    def proof(n: int, secret: str | None = None) -> str:
        registration, real = secrets[n]
        return f"id={registration} secret={secret or real} subject=CN=cmc-bc-{n}"

    results, output = run_java(est, classes, [
        f"enroll_p10 enroll {proof(1)} txid=42 nonce=client-nonce-1",
        f"enroll_crmf enroll format=crmf {proof(2)}",
        f"enroll_est enroll via=est: {proof(3)}",
        f"wrong_secret enroll via=est: {proof(4, 'not-the-secret')}",
        f"no_identification enroll {proof(5)} noident",
        f"proof_md5 enroll {proof(5)} proofhash=1.2.840.113549.2.5",
        f"tampered enroll {proof(5)} tamper",
        f"signed_an_hour_ago enroll {proof(5)} skewsec=-3600",
        f"add_extensions enroll {proof(5)} addext",
        f"crmf_without_pop enroll format=crmf pop=none {proof(6)}",
        f"crmf_wrong_pop enroll format=crmf pop=bad {proof(6)}",
        "authenticated_data enroll authdata",
        "nothing_asked empty",
        "no_credentials enroll subject=CN=cmc-bc-none",
        "pending enroll via=cmc:components subject=CN=chip-cmc-bc",
        # one client may queue APPROVALS requests a minute (per listener process: these and
        # `pending` go to the plain-HTTP one); the next one is told to wait
        *(f"flood_{n} enroll via=cmc:components subject=CN=chip-flood-{n}"
          for n in range(APPROVALS - 1)),
        "flooded enroll via=cmc:components subject=CN=chip-flooded",
        "previous_stage enroll via=est:devices signer=chip.pem:chip.key subject=CN=sensor-cmc",
        "foreign_revoke revoke signer=foreign.pem:foreign.key",
    ])
    return Run(est, results, output)


@pytest.fixture(scope="module")
def second(first: Run, classes: Path) -> Run:
    """After the operator approved the pending request: poll, renew, revoke."""
    pending = (first.est.dir / "pending.token").read_bytes().decode().partition(":")[0]
    first.est.pki.enrollment.approval.approve(pending, "operator@test")
    results, output = run_java(first.est, classes, [
        "poll poll via=cmc:components token=pending.token key=pending.key.pem",
        "renew enroll signer=enroll_p10.cert.pem:enroll_p10.key.pem subject=CN=cmc-bc-1",
        "renew_same_key enroll signer=enroll_crmf.cert.pem:enroll_crmf.key.pem reusekey "
        "subject=CN=cmc-bc-2",
        "revoke_another revoke signer=enroll_crmf.cert.pem:enroll_crmf.key.pem "
        "target=enroll_est.cert.pem",
        "revoke revoke signer=enroll_est.cert.pem:enroll_est.key.pem reason=1",
        "renew_revoked enroll signer=enroll_est.cert.pem:enroll_est.key.pem subject=CN=cmc-bc-3",
    ])
    return Run(first.est, results, output)


def _issued_here(run: Run, name: str) -> x509.Certificate:
    certificate = run.certificate(name)
    record = run.est.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record is not None and record.status is CertificateStatus.GOOD
    return certificate


@pytest.mark.parametrize("name", ["enroll_p10", "enroll_crmf", "enroll_est", "previous_stage"])
def test_enrollment_succeeds(first: Run, name: str) -> None:
    """RFC 5272 §3.2 Full PKI Request (PKCS #10 §3.2.1.3.1, CRMF §3.2.1.3.2) with an identity
    proof (§6.2.1) or signed by a previous-stage certificate; success, the certificate in the
    SignedData (§3.3), read by BC."""
    assert first[name] == Result(200, "success", "-")
    certificate = _issued_here(first, name)
    assert certificate.subject.rfc4514_string().startswith("CN=")


def test_previous_stage_certificate_gets_the_device_ca(first: Run) -> None:
    certificate = _issued_here(first, "previous_stage")
    issuer = first.est.pki.authorities.get("deviceco-devices").certificate
    assert certificate.issuer == issuer.subject


def test_transaction_id_and_nonce_are_returned(first: Run) -> None:
    """RFC 5272 §6.6: transactionId echoed, senderNonce returned as recipientNonce."""
    assert "TXID enroll_p10 42" in first.output
    assert "NONCE enroll_p10 client-nonce-1" in first.output


@pytest.mark.parametrize(("name", "http", "fail"), [
    ("wrong_secret", 403, BAD_IDENTITY),  # §6.2.1: the witness does not verify (EST: 403)
    ("no_identification", 200, BAD_IDENTITY),  # §6.2.3: which secret?
    ("proof_md5", 200, BAD_ALG),  # §6.2.1 proofAlgID we do not compute
    ("tampered", 200, BAD_MESSAGE_CHECK),  # the SignedData signature does not verify
    ("signed_an_hour_ago", 200, BAD_TIME),  # signingTime outside the clock skew
    ("add_extensions", 200, UNSUPPORTED_EXT),  # §6.5.2 addExtensions is not served
    ("crmf_without_pop", 200, POP_REQUIRED),  # RFC 4211 §4: no proof of possession
    ("crmf_wrong_pop", 200, POP_FAILED),  # the POP signature does not verify
    ("authenticated_data", 200, AUTH_DATA_FAIL),  # §3.2.3 AuthenticatedData not served
    ("nothing_asked", 200, BAD_REQUEST),  # a PKIData with no operation
    ("no_credentials", 200, BAD_IDENTITY),  # no method of the endpoint applies
    ("foreign_revoke", 200, BAD_CERT_ID),  # §6.11: not a certificate of ours
])
def test_each_failure_is_a_failed_status_with_its_fail_info(first: Run, name: str, http: int,
                                                            fail: str) -> None:
    """RFC 5272 §6.1.1: failed with the CMCFailInfo; over plain HTTP (RFC 5273) the answer
    is 200, over EST a 4xx (RFC 7030 §4.3.2); nothing is issued."""
    assert first[name] == Result(http, "failed", fail)
    assert not (first.est.dir / f"{name}.cert.pem").exists()


def test_flooding_the_approval_queue_is_try_later(first: Run) -> None:
    """Past one client's budget of requests for approval: failed tryLater (RFC 5272
    §6.1.4), in a 200 over RFC 5273 HTTP."""
    assert [first[f"flood_{n}"].status for n in range(APPROVALS - 1)] == \
        ["pending"] * (APPROVALS - 1)
    assert first["flooded"] == Result(200, "failed", TRY_LATER)


def test_failures_are_audited(first: Run) -> None:
    refused = [e.record for e in first.est.pki.audit.entries(after=first.est.audit_after,
                                                              limit=None)
               if e.record.outcome == "refused"]
    details = " ".join(str(r.details.get("detail")) for r in refused)
    for fail_info in ("badMessageCheck", "badTime", "unsupportedExt", "popRequired",
                      "authDataFail", "badAlg", "badCertId"):
        assert fail_info in details
    assert any(r.action == "enrollment.authorize" and r.details["reason"] == "bad-secret"
               for r in refused)


def test_manual_approval_is_pending_then_polled(first: Run, second: Run) -> None:
    """RFC 5272 §6.1.1 pending with PendInfo, then §6.13 queryPending after approval."""
    assert first["pending"] == Result(200, "pending", "-")
    assert second["poll"] == Result(200, "success", "-")
    certificate = _issued_here(second, "poll")
    assert certificate.issuer == second.est.pki.authorities.get(
        "chipco-components").certificate.subject


def test_renewal_signed_by_the_current_certificate(second: Run) -> None:
    """A request signed by the current certificate renews it: same subject, new key."""
    assert second["renew"] == Result(200, "success", "-")
    old, new = second.certificate("enroll_p10"), _issued_here(second, "renew")
    assert new.subject == old.subject and new.public_key() != old.public_key()


def test_renewal_with_the_same_key_is_no_key_reuse(second: Run) -> None:
    assert second["renew_same_key"] == Result(200, "failed", NO_KEY_REUSE)


def test_revoke_request(second: Run) -> None:
    """RFC 5272 §6.11 revokeRequest signed by the certificate it names: revoked
    (keyCompromise); another certificate cannot be named; the revoked one renews no more."""
    assert second["revoke_another"] == Result(200, "failed", BAD_IDENTITY)
    assert second["revoke"] == Result(200, "success", "-")
    record = second.est.pki.certificates.get_by_fingerprint(
        fingerprint(second.certificate("enroll_est")))
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == x509.ReasonFlags.key_compromise.value
    other = second.est.pki.certificates.get_by_fingerprint(
        fingerprint(second.certificate("enroll_crmf")))
    assert other.status is CertificateStatus.GOOD
    assert second["renew_revoked"] == Result(200, "failed", BAD_IDENTITY)


def test_openssl_reads_the_answer(first: Run) -> None:
    """`openssl cms` verifies a PKIResponse against the root and shows its structure."""
    est = first.est
    write_trust_files(est.pki, est.dir)
    est.openssl("cms", "-verify", "-inform", "DER", "-in", "enroll_p10.resp.der",
                "-CAfile", "root.pem", "-purpose", "any", "-out", "content.der",
                "-binary")
    listing = est.openssl("cms", "-cmsout", "-print", "-inform", "DER",
                          "-in", "enroll_p10.resp.der")
    assert "eContentType: 1.3.6.1.5.5.7.12.3" in listing or "id-cct-PKIResponse" in listing
    parsed = est.openssl("asn1parse", "-inform", "DER", "-in", "content.der")
    assert "1.3.6.1.5.5.7.7.25" in parsed or "id-cmc-statusInfoV2" in parsed
