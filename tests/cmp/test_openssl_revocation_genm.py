"""rr (RFC 9483 §4.2: by the holder, by an RA principal, MAC-protected), genm (§4.3) and
polling for manual approval (§4.4) with `openssl cmp`."""

from __future__ import annotations

import subprocess
import time

import pytest
from cryptography import x509

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.integration.principal import Role
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import MAY_REVOKE
from tests.cmp.conftest import Scene, write_pem

pytestmark = pytest.mark.interop


def _enrolled(scene: Scene, name: str = "device", subject: str = "CN=sensor-7") -> x509.Certificate:
    registration, secret = scene.secret_registration(subject)
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}", "-implicit_confirm",
              "-newkey", scene.new_key(f"{name}.key"), "-subject", "/" + subject,
              "-recipient", "/CN=iotpki", "-certout", f"{name}.pem")
    return scene.certificate(f"{name}.pem")


def test_rr_signed_by_an_ra_principal(scene: Scene) -> None:
    """RFC 9483 §5.3.2: the RA's certificate is bound to an API principal of the device's
    organization whose role may revoke; `-oldcert` names the device's certificate."""
    ra = _enrolled(scene, "ra", "CN=ra-station-1")
    device = _enrolled(scene, "sensor", "CN=sensor-61")
    scene.pki.principals.create_certificate_principal(
        "operatorco", Role.OPERATOR, "ra-station-1", "test", fingerprint=fingerprint(ra))
    done = scene.cmp("-cmd", "rr", "-cert", "ra.pem", "-key", "ra.key",
                     "-oldcert", "sensor.pem", "-revreason", "5", "-trusted", "root.pem")
    assert "revocation accepted" in done.stdout + done.stderr
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(device))
    assert record.status is CertificateStatus.REVOKED
    assert scene.pki.certificates.get_by_fingerprint(
        fingerprint(ra)).status is CertificateStatus.GOOD


def test_rr_mac_protected_by_a_credential_that_may_revoke(scene: Scene) -> None:
    reference = "line-rr-1"
    registration = {"reference": reference, "uses": 5, "attributes": {MAY_REVOKE: True}}
    _, secret = scene.secret_registration("CN=sensor-62", **registration)
    scene.cmp("-cmd", "ir", "-ref", reference, "-secret", f"pass:{secret}",
              "-implicit_confirm", "-newkey", scene.new_key("line.key"),
              "-subject", "/CN=sensor-62", "-recipient", "/CN=iotpki", "-certout", "line.pem")
    device = scene.certificate("line.pem")
    done = scene.cmp("-cmd", "rr", "-ref", reference, "-secret", f"pass:{secret}",
                     "-recipient", "/CN=iotpki", "-oldcert", "line.pem", "-revreason", "4")
    assert "revocation accepted" in done.stdout + done.stderr
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(device))
    assert record.status is CertificateStatus.REVOKED


def test_rr_revokes_with_the_requested_reason(scene: Scene) -> None:
    certificate = _enrolled(scene)
    done = scene.cmp("-cmd", "rr", "-cert", "device.pem", "-key", "device.key",
                     "-oldcert", "device.pem", "-revreason", "1", "-trusted", "root.pem")
    assert "revocation accepted" in done.stdout + done.stderr
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == x509.ReasonFlags.key_compromise.value
    again = scene.cmp("-cmd", "rr", "-cert", "device.pem", "-key", "device.key",
                      "-oldcert", "device.pem", "-trusted", "root.pem", check=False)
    assert again.returncode != 0  # revoked: refused (certRevoked), whatever signs it


@pytest.mark.parametrize("info_type", ["caCerts", "certReqTemplate", "currentCRL"])
def test_genm(scene: Scene, info_type: str) -> None:
    _enrolled(scene)
    done = scene.cmp("-cmd", "genm", "-cert", "device.pem", "-key", "device.key",
                     "-trusted", "root.pem", "-infotype", info_type)
    assert f"genp contains ITAV of type: id-it-{info_type}" in done.stdout + done.stderr


def test_genm_with_mac(scene: Scene) -> None:
    registration, secret = scene.secret_registration()
    done = scene.cmp("-cmd", "genm", "-ref", registration, "-secret", f"pass:{secret}",
                     "-recipient", "/CN=iotpki", "-infotype", "caCerts")
    assert "genp contains ITAV of type: id-it-caCerts" in done.stdout + done.stderr


def test_manual_approval_with_polling(scene: Scene) -> None:
    _enrolled(scene)  # the requester signs with a certificate; an operator decides
    chain = scene.pki.authorities.get("chipco-components").full_chain
    write_pem(scene.dir / "chip-root.pem", chain[-1])
    write_pem(scene.dir / "chip-ca.pem", *chain[:-1])
    client = subprocess.Popen(
        ["openssl", "cmp", *scene.url_args("components"), "-cmd", "ir", "-cert", "device.pem",
         "-key", "device.key", "-trusted", "chip-root.pem", "-newkey", scene.new_key("chip.key"),
         "-subject", "/CN=chip-0007", "-san_nodefault", "-certout", "chip.pem",
         "-total_timeout", "50"],
        cwd=scene.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        request = _wait_for_pending(scene)
        scene.pki.enrollment.approval.approve(request, "chipco:operator")
        output, _ = client.communicate(timeout=55)
    finally:
        client.kill()
    assert client.returncode == 0, output
    assert "received 'waiting' PKIStatus" in output and "sending POLLREQ" in output
    scene.verify("chip.pem", root="chip-root.pem", chain="chip-ca.pem")


def _wait_for_pending(scene: Scene) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pending = scene.pki.enrollment.approval.find()
        if pending:
            return pending[0].id
        time.sleep(0.2)
    raise TimeoutError("no request waits for approval")
