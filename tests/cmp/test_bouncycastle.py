"""BouncyCastle's CMP and CRMF classes (Debian libbcpkix-java 1.72: `ProtectedPKIMessageBuilder`,
`CertificateRequestMessageBuilder`, `PKMACBuilder`, `JcePBMac1CalculatorBuilder`,
`CertificateConfirmationContentBuilder`) as a second independent CMP client (DESIGN.md §6):
ir with PasswordBasedMac and with PBMAC1 (RFC 9481 §6.1), cr, kur and p10cr signed with the
current certificate (RFC 9483 §4.1.2-§4.1.4), certConf (§4.1.1), rr (§4.2) and genm (§4.3),
each built with BC's encoder; every answer is read with BC's decoder and its protection
checked by BC (`tests/cmp/java/CmpInterop.java`, compiled with javac at test time). One
`iotpki serve` process serves the whole module; each test uses its own registrations and keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1_alt_modules import rfc9480

from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import RegistrationMethod, RegistrationStatus
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import CA, DOMAIN, Scene, write_key, write_pem
from tests.conftest import key_settings
from tests.java import compile_java, java_command
from tests.servers import ServerProcess, free_port
from tests.supply_chain.story import make_chip

pytestmark = pytest.mark.interop
SOURCE = Path(__file__).parent / "java" / "CmpInterop.java"
CA_CERTS, CERT_REQ_TEMPLATE = "1.3.6.1.5.5.7.4.17", "1.3.6.1.5.5.7.4.19"
PASSPHRASE = "test passphrase, not a secret"


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_java(SOURCE, tmp_path_factory)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
          ) -> Iterator[Scene]:
    """The demo PKI behind one `iotpki serve` for the module (SQLite: the storage paths are
    covered by the openssl suites on both databases)."""
    directory = tmp_path_factory.mktemp("bc-cmp")
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
        settings = Settings(data_dir=directory / "data", public_url=f"http://127.0.0.1:{port}",
                            **key_settings(request))
        pki = build_pki(settings)
        create_demo_hierarchy(pki)
        server = ServerProcess(settings, port)
        try:
            server.start(timeout=120)
            chain = pki.authorities.get(CA).full_chain
            write_pem(directory / "root.pem", chain[-1])
            write_pem(directory / "chain.pem", *chain[:-1])
            yield Scene(pki, server, directory)
        finally:
            server.stop()
            pki.close()


def bc(scene: Scene, classes: Path, op: str, out: str, *options: str, label: str = ""
       ) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    """One BC exchange; the process and its report (`<out>.txt`, key=value lines)."""
    url = f"{scene.server.url}/.well-known/cmp" + (f"/p/{label}" if label else "")
    done = subprocess.run(
        java_command(classes, "CmpInterop", url, op, out, *options), cwd=scene.dir,
        capture_output=True, text=True, timeout=120, check=False)
    report: dict[str, list[str]] = {}
    path = scene.dir / f"{out}.txt"
    for line in path.read_text().splitlines() if path.exists() else ():
        key, _, value = line.partition("=")
        report.setdefault(key, []).append(value)
    return done, report


def failures(report: dict[str, list[str]]) -> set[str]:
    """The PKIFailureInfo names BC read from the answer."""
    names = {bit: name for name, bit in rfc9480.PKIFailureInfo.namedValues.items()}
    return {names[int(b)] for value in report.get("failInfo", []) for b in value.split(",") if b}


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr


def _protection_subject(scene: Scene, out: str) -> str:
    return scene.certificate(f"{out}.extra.pem").subject.rfc4514_string()


def _enrolled(scene: Scene, classes: Path, out: str, subject: str) -> x509.Certificate:
    registration, secret = scene.secret_registration(subject)
    done, _ = bc(scene, classes, "ir", out, "--pbm", registration, secret, "--subject", subject,
                 "--implicit")
    ok(done)
    return scene.certificate(f"{out}.pem")


def test_ir_with_password_based_mac_and_certconf(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.1.1 with PasswordBasedMac (RFC 9481 §6.1.1): ip, certConf, pkiConf."""
    registration, secret = scene.secret_registration("CN=bc-pbm")
    done, report = bc(scene, classes, "ir", "pbm", "--pbm", registration, secret,
                      "--subject", "CN=bc-pbm")
    ok(done)
    assert report["body"] == ["ip", "pkiconf"] and report["protection"] == ["mac", "mac"]
    assert report["confirm"] == ["pkiconf"] and report["status"] == ["0"]
    scene.verify("pbm.pem", root="pbm.capubs.pem", chain="pbm.extra.pem")
    issued = scene.certificate("pbm.pem")
    assert scene.pki.certificates.get_by_fingerprint(fingerprint(issued)).authority == CA
    assert scene.pki.registrations.get(registration).status is RegistrationStatus.CONSUMED
    confirmed = [a for a in scene.audit("cmp.certificate.confirm")
                 if a["actor"] == f"cmp:{registration}"]
    assert [a["outcome"] for a in confirmed] == ["success"]


@pytest.mark.parametrize("prf", ["sha256", "sha384", "sha512"])
def test_ir_with_pbmac1(scene: Scene, classes: Path, prf: str) -> None:
    """RFC 9481 §6.1.2 PBMAC1 (PBKDF2 with each SHA-2 PRF): BC's MAC verifies here, ours
    verifies in BC, and the answer uses PBMAC1 too."""
    registration, secret = scene.secret_registration(f"CN=bc-pbmac1-{prf}")
    done, report = bc(scene, classes, "ir", f"pbmac1-{prf}", "--pbmac1", registration, secret,
                      "--prf", prf, "--subject", f"CN=bc-pbmac1-{prf}")
    ok(done)
    assert report["protection"] == ["mac", "mac"] and report["confirm"] == ["pkiconf"]
    scene.verify(f"pbmac1-{prf}.pem", root=f"pbmac1-{prf}.capubs.pem",
                 chain=f"pbmac1-{prf}.extra.pem")


def test_ir_with_a_wrong_secret_is_refused(scene: Scene, classes: Path) -> None:
    """RFC 9483 §3.6.4: a MAC that does not verify gets an error with badMessageCheck."""
    registration, _ = scene.secret_registration("CN=bc-wrong")
    done, report = bc(scene, classes, "ir", "wrong", "--pbm", registration, "not the secret",
                      "--subject", "CN=bc-wrong")
    assert done.returncode == 2, done.stdout + done.stderr
    assert report["body"] == ["error"] and report["protection"] == ["signature"]
    assert report["status"] == ["2"] and failures(report) == {"badMessageCheck"}
    assert scene.pki.registrations.get(registration).status is RegistrationStatus.OPEN


def test_cr_signed_by_the_current_certificate(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.1.2: a cr signed with the current certificate renews it; the answer is
    signed by a certificate that chains to the CA's root and names it as sender (§3.1)."""
    first = _enrolled(scene, classes, "cr-first", "CN=bc-cr")
    done, report = bc(scene, classes, "cr", "cr-next", "--cert", "cr-first.pem",
                      "--key", "cr-first.key.pem", "--subject", "CN=bc-cr",
                      "--trusted", "root.pem")
    ok(done)
    assert report["body"] == ["cp", "pkiconf"] and report["protection"] == ["signature"] * 2
    assert report["sender"][0] == _protection_subject(scene, "cr-next")
    renewed = scene.certificate("cr-next.pem")
    assert renewed.subject == first.subject and renewed.public_key() != first.public_key()
    scene.verify("cr-next.pem")


def test_kur_with_old_cert_id(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.1.3: kur signed with the certificate to update, oldCertId naming it."""
    first = _enrolled(scene, classes, "kur-first", "CN=bc-kur")
    done, report = bc(scene, classes, "kur", "kur-next", "--cert", "kur-first.pem",
                      "--key", "kur-first.key.pem", "--old-cert", "kur-first.pem",
                      "--subject", "CN=bc-kur", "--trusted", "root.pem")
    ok(done)
    assert report["body"] == ["kup", "pkiconf"]
    updated = scene.certificate("kur-next.pem")
    assert updated.subject == first.subject and updated.public_key() != first.public_key()
    scene.verify("kur-next.pem")


def test_p10cr_signed_by_the_current_certificate(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.1.4: a PKCS#10 request in p10cr; the answer's certReqId is -1."""
    _enrolled(scene, classes, "p10-first", "CN=bc-p10")
    done, report = bc(scene, classes, "p10cr", "p10-next", "--cert", "p10-first.pem",
                      "--key", "p10-first.key.pem", "--subject", "CN=bc-p10",
                      "--trusted", "root.pem")
    ok(done)
    assert report["body"] == ["cp", "pkiconf"] and report["certReqId"] == ["-1"]
    scene.verify("p10-next.pem")


def test_rr_signed_by_the_certificate_to_revoke(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.2: rr with one RevDetails and its CRLReason; rp accepted; revoked here."""
    certificate = _enrolled(scene, classes, "rr-first", "CN=bc-rr")
    done, report = bc(scene, classes, "rr", "rr", "--cert", "rr-first.pem",
                      "--key", "rr-first.key.pem", "--reason", "1", "--trusted", "root.pem")
    ok(done)
    assert report["body"] == ["rp"] and report["status"] == ["0"]
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == x509.ReasonFlags.key_compromise.value


def test_genm_with_mac(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.3.1 and §4.3.3 with a registration's secret: caCerts and the
    certificate request template, read by BC's decoder."""
    registration, secret = scene.secret_registration("CN=bc-genm")
    done, report = bc(scene, classes, "genm", "genm-mac", "--pbm", registration, secret,
                      "--info", CA_CERTS, "--info", CERT_REQ_TEMPLATE)
    ok(done)
    assert report["body"] == ["genp"] and report["protection"] == ["mac"]
    assert report["info"] == [f"{CA_CERTS} present", f"{CERT_REQ_TEMPLATE} present"]
    ca_certs = x509.load_pem_x509_certificates((scene.dir / "genm-mac.cacerts.pem").read_bytes())
    assert set(ca_certs) == set(scene.pki.authorities.get(CA).full_chain)


def test_genm_signed(scene: Scene, classes: Path) -> None:
    """RFC 9483 §4.3.1 signed with a certificate issued here; the genp is signed."""
    _enrolled(scene, classes, "genm-first", "CN=bc-genm-signed")
    done, report = bc(scene, classes, "genm", "genm-signed", "--cert", "genm-first.pem",
                      "--key", "genm-first.key.pem", "--info", CA_CERTS,
                      "--trusted", "root.pem")
    ok(done)
    assert report["body"] == ["genp"] and report["protection"] == ["signature"]
    assert report["info"] == [f"{CA_CERTS} present"]


def _cli(scene: Scene, *args: str) -> dict[str, object]:
    """The operator's route: `iotpki` in its own process, on the served data directory."""
    done = subprocess.run([sys.executable, "-m", "iotpki.cli.main", "--data-dir",
                           str(scene.pki.settings.data_dir), *args, "--json"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "IOTPKI_CA_PASSPHRASE": PASSPHRASE})
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_reusable_reference_for_a_production_line(scene: Scene, classes: Path) -> None:
    """A registration made with `iotpki registration create --reference REF --uses 2`: BC
    sends REF as senderKID (PBMAC1) and enrolls twice; then the secret is used up and
    authenticates neither an ir nor a genm (notAuthorized)."""
    created = _cli(scene, "registration", "create", "--org", "operatorco", "--ca", CA,
                   "--profile", "operational", "--method", "one-time-secret",
                   "--domain", DOMAIN, "--reference", "bc-line-1", "--uses", "2")
    assert created["reference"] == "bc-line-1" and created["uses_allowed"] == 2
    secret = str(created["secret"])
    for n in (1, 2):
        done, report = bc(scene, classes, "ir", f"line-{n}", "--pbmac1", "bc-line-1", secret,
                          "--subject", f"CN=bc-line-device-{n}")
        ok(done)
        assert report["confirm"] == ["pkiconf"]  # the certConf after the last use counts
    shown = _cli(scene, "registration", "show", str(created["id"]))
    assert shown["status"] == "consumed" and shown["uses"] == 2
    done, report = bc(scene, classes, "ir", "line-3", "--pbmac1", "bc-line-1", secret,
                      "--subject", "CN=bc-line-device-3")
    assert done.returncode == 2 and failures(report) == {"notAuthorized"}, done.stderr
    done, report = bc(scene, classes, "genm", "line-genm", "--pbmac1", "bc-line-1", secret,
                      "--info", CA_CERTS)
    assert done.returncode == 2 and failures(report) == {"notAuthorized"}, done.stderr


def test_ir_signed_by_a_previous_stage_leaf_alone(scene: Scene, classes: Path) -> None:
    """Chain completion (issue 13): BC sends only the chip's certificate in extraCerts (no
    supplier CA); the server completes the path from the CAs it knows and enrolls."""
    chip = make_chip(scene.pki, 77)
    scene.pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=fingerprint(chip.chain[0])), "deviceco:ra")
    write_pem(scene.dir / "chip-77.pem", chip.chain[0])
    write_key(scene.dir / "chip-77.key.pem", chip.key)
    device_chain = scene.pki.authorities.get("deviceco-devices").full_chain
    write_pem(scene.dir / "device-root.pem", device_chain[-1])
    done, report = bc(scene, classes, "ir", "chip-77-device", "--cert", "chip-77.pem",
                      "--key", "chip-77.key.pem", "--subject", "CN=sensor-77",
                      "--trusted", "device-root.pem", label="devices")
    ok(done)
    assert report["body"] == ["ip", "pkiconf"]
    record = scene.pki.certificates.get_by_fingerprint(
        fingerprint(scene.certificate("chip-77-device.pem")))
    assert record.authority == "deviceco-devices" and record.profile == "device"


def test_a_leaf_of_an_unknown_ca_is_still_refused(scene: Scene, classes: Path) -> None:
    """Completion only adds candidates: a chip certificate that names ChipCo's CA as issuer
    but was signed by a key of its own does not validate, and nothing is issued."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = parse_subject("CN=counterfeit chip")
    now = datetime.now(UTC)
    counterfeit = (x509.CertificateBuilder().subject_name(name).issuer_name(
        scene.pki.authorities.get("chipco-components").certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256()))
    scene.pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=fingerprint(counterfeit)), "deviceco:ra")
    write_pem(scene.dir / "fake.pem", counterfeit)
    write_key(scene.dir / "fake.key.pem", key)
    done, report = bc(scene, classes, "ir", "fake-device", "--cert", "fake.pem",
                      "--key", "fake.key.pem", "--subject", "CN=sensor-fake", label="devices")
    assert done.returncode == 2, done.stdout + done.stderr
    assert failures(report) == {"signerNotTrusted"}
