"""Refusals (RFC 9483 §3.6.4): every one is a protected CMP error message with a
PKIFailureInfo (never an HTTP 500), nothing is issued, and the refusal is audited."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import RegistrationStatus
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.protection import verify_signature_protection
from tests.cmp.conftest import Scene, error_failures, post_cmp

pytestmark = pytest.mark.interop


def _issued_count(scene: Scene) -> int:
    """Certificates issued to clients (not the server's own OCSP and CMP signers)."""
    return sum(1 for a in scene.audit("certificate.issue")
               if a["outcome"] == "success" and a["method"] != "internal")


def _refusals(scene: Scene) -> list[str]:
    return [str(a["failure"]) for a in scene.audit("cmp.request")]


def test_wrong_mac_is_bad_message_check(scene: Scene) -> None:
    registration, _ = scene.secret_registration()
    before = _issued_count(scene)
    done = scene.cmp("-cmd", "ir", "-ref", registration, "-secret", "pass:not-the-secret",
                     "-trusted", "root.pem", "-newkey", scene.new_key("k.pem"),
                     "-subject", "/CN=sensor-7", "-recipient", "/CN=iotpki", "-certout", "x.pem",
                     check=False)
    assert done.returncode != 0
    assert "badMessageCheck" in done.stdout + done.stderr, done.stderr
    assert _issued_count(scene) == before
    assert scene.pki.registrations.get(registration).status is RegistrationStatus.OPEN
    assert _refusals(scene) == ["badMessageCheck"]


def test_unknown_registration_is_bad_message_check(scene: Scene) -> None:
    """RFC 9483 §3.6.4: an unknown MAC reference (senderKID) is a message check failure."""
    done = scene.cmp("-cmd", "ir", "-ref", "no-such-registration", "-secret", "pass:x",
                     "-trusted", "root.pem", "-newkey", scene.new_key("k.pem"),
                     "-subject", "/CN=sensor-7", "-recipient", "/CN=iotpki", "-certout", "x.pem",
                     check=False)
    assert done.returncode != 0 and "badMessageCheck" in done.stdout + done.stderr
    assert _refusals(scene) == ["badMessageCheck"]


def test_unprotected_request_is_refused(scene: Scene) -> None:
    done = scene.cmp("-cmd", "ir", "-unprotected_requests", "-trusted", "root.pem",
                     "-newkey", scene.new_key("k.pem"), "-subject", "/CN=sensor-7",
                     "-recipient", "/CN=iotpki", "-certout", "x.pem", check=False)
    assert done.returncode != 0 and "badMessageCheck" in done.stdout + done.stderr
    assert _refusals(scene) == ["badMessageCheck"]


# "overrun": an element inside the header runs past the header's end (X.690 §8.1.1.3)
@pytest.mark.parametrize("body", [b"", b"\x30\x03abc", b"not DER at all", b"\x30\x80" * 40,
                                  bytes.fromhex("3008" "3002" "0403" "010203" "04")],
                         ids=["empty", "short", "text", "indefinite", "overrun"])
def test_malformed_der_gets_a_signed_bad_data_format(scene: Scene, body: bytes) -> None:
    status, content_type, der = post_cmp(f"{scene.server.url}/.well-known/cmp", body)
    assert status == 200 and content_type == "application/pkixcmp"
    assert error_failures(der) == ("error", {"badDataFormat"})
    answer = decode_pki_message(der)
    signer = verify_signature_protection(answer)  # raises unless the signature verifies
    signer.verify_directly_issued_by(scene.pki.authorities.get("operatorco-operations").certificate)
    assert _refusals(scene) == ["badDataFormat"]


def test_wrong_content_type_and_unknown_label(scene: Scene) -> None:
    assert post_cmp(f"{scene.server.url}/.well-known/cmp", b"x", "text/plain")[0] == 415
    assert post_cmp(f"{scene.server.url}/.well-known/cmp/p/nope", b"x")[0] == 404


def test_replayed_message_is_refused(scene: Scene) -> None:
    registration, secret = scene.secret_registration()
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}", "-implicit_confirm",
              "-newkey", scene.new_key("k.pem"), "-subject", "/CN=sensor-7",
              "-recipient", "/CN=iotpki", "-reqout", "ir.der", "-certout", "x.pem")
    before = _issued_count(scene)
    _, _, der = post_cmp(f"{scene.server.url}/.well-known/cmp", (scene.dir / "ir.der").read_bytes())
    assert error_failures(der) == ("error", {"badSenderNonce"})
    assert _issued_count(scene) == before
    assert _refusals(scene) == ["badSenderNonce"]


def _enrolled(scene: Scene) -> None:
    registration, secret = scene.secret_registration()
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}", "-implicit_confirm",
              "-newkey", scene.new_key("device.key"), "-subject", "/CN=sensor-7",
              "-recipient", "/CN=iotpki", "-certout", "device.pem")


def test_request_outside_the_profile_is_bad_cert_template(scene: Scene) -> None:
    _enrolled(scene)
    before = _issued_count(scene)
    done = scene.cmp("-cmd", "cr", "-cert", "device.pem", "-key", "device.key", "-trusted",
                     "root.pem", "-newkey", scene.new_key("other.key"),
                     "-subject", "/CN=someone-else", "-certout", "x.pem", check=False)
    assert done.returncode != 0 and "badCertTemplate" in done.stdout + done.stderr
    assert _issued_count(scene) == before
    refused = [a for a in scene.audit("enrollment.authorize") if a["outcome"] == "refused"]
    assert [a["reason"] for a in refused] == ["identity-mismatch"]


def test_rr_by_a_foreign_certificate_is_signer_not_trusted(scene: Scene) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=intruder", "-keyout",
                    "intruder.key", "-out", "intruder.pem"], cwd=scene.dir, check=True,
                   capture_output=True, timeout=30)
    done = scene.cmp("-cmd", "rr", "-cert", "intruder.pem", "-key", "intruder.key",
                     "-oldcert", "intruder.pem", "-trusted", "root.pem", check=False)
    assert done.returncode != 0 and "signerNotTrusted" in done.stdout + done.stderr
    assert _refusals(scene) == ["signerNotTrusted"]


def test_ir_signed_by_an_unregistered_certificate_is_not_authorized(scene: Scene) -> None:
    _enrolled(scene)  # a good certificate of ours, but on no registration for a next stage
    done = scene.cmp("-cmd", "ir", "-cert", "device.pem", "-key", "device.key", "-trusted",
                     "root.pem", "-newkey", scene.new_key("n.key"), "-subject", "/CN=sensor-8",
                     "-certout", "x.pem", check=False)
    assert done.returncode != 0 and "notAuthorized" in done.stdout + done.stderr
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(
        x509.load_pem_x509_certificate((scene.dir / "device.pem").read_bytes())))
    assert record.status is CertificateStatus.GOOD
