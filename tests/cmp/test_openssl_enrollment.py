"""Enrollment (RFC 9483 §4.1) with the `openssl cmp` client against `iotpki serve`: ir with a
one-time secret (PasswordBasedMac) and with a previous-stage certificate, cr and p10cr by
the current certificate, kur; explicit (certConf → pkiConf) and implicit confirmation."""

from __future__ import annotations

import subprocess

import pytest

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import RegistrationMethod, RegistrationStatus
from iotpki.core.ra.registration_service import RegistrationSpec
from tests.cmp.conftest import CA, DOMAIN, Scene, write_key, write_pem
from tests.supply_chain.story import make_chip

pytestmark = pytest.mark.interop


def _ir_with_secret(scene: Scene, *extra: str, subject: str = "CN=sensor-7") -> str:
    registration, secret = scene.secret_registration(subject)
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}",
              "-newkey", scene.new_key("device.key"), "-subject", "/" + subject,
              "-recipient", "/CN=iotpki", "-certout", "device.pem", "-cacertsout", "capubs.pem",
              "-extracertsout", "extra.pem", *extra)
    return registration


def test_ir_with_mac_and_explicit_confirmation(scene: Scene) -> None:
    registration = _ir_with_secret(scene)
    scene.verify("device.pem", root="capubs.pem", chain="extra.pem")
    issued = scene.certificate("device.pem")
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(issued))
    assert record.authority == CA and record.profile == "operational"
    assert record.sans == (f"uri:urn:iotpki:domain:{DOMAIN}",)
    assert scene.pki.registrations.get(registration).status is RegistrationStatus.CONSUMED
    confirmed = scene.audit("cmp.certificate.confirm")
    assert [c["outcome"] for c in confirmed] == ["success"]
    assert confirmed[0]["target"] == f"{CA}:{record.serial_hex}"


def test_ir_with_mac_and_implicit_confirmation(scene: Scene) -> None:
    _ir_with_secret(scene, "-implicit_confirm")
    scene.verify("device.pem", root="capubs.pem", chain="extra.pem")
    assert scene.audit("cmp.certificate.confirm") == []  # no certConf was needed
    assert [a["outcome"] for a in scene.audit("certificate.issue")
            if a["method"] == "one-time-secret"] == ["success"]


def test_ir_with_previous_stage_certificate(scene: Scene) -> None:
    chip = make_chip(scene.pki, 42)
    scene.pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=fingerprint(chip.chain[0])), "deviceco:ra")
    write_pem(scene.dir / "chip.pem", chip.chain[0])
    write_pem(scene.dir / "chip-ca.pem", *chip.chain[1:])
    write_key(scene.dir / "chip.key", chip.key)
    device_chain = scene.pki.authorities.get("deviceco-devices").full_chain
    write_pem(scene.dir / "device-root.pem", device_chain[-1])
    write_pem(scene.dir / "device-ca.pem", *device_chain[:-1])
    scene.cmp("-cmd", "ir", "-cert", "chip.pem", "-key", "chip.key", "-extracerts", "chip-ca.pem",
              "-trusted", "device-root.pem", "-newkey", scene.new_key("sensor.key"),
              "-subject", "/CN=sensor-42", "-certout", "sensor.pem", label="devices")
    scene.verify("sensor.pem", root="device-root.pem", chain="device-ca.pem")
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(scene.certificate("sensor.pem")))
    assert record.authority == "deviceco-devices" and record.profile == "device"


def _current(scene: Scene) -> None:
    _ir_with_secret(scene, "-implicit_confirm")


def test_cr_by_the_current_certificate(scene: Scene) -> None:
    _current(scene)
    scene.cmp("-cmd", "cr", "-cert", "device.pem", "-key", "device.key", "-trusted", "root.pem",
              "-newkey", scene.new_key("next.key"), "-subject", "/CN=sensor-7",
              "-certout", "next.pem")
    scene.verify("next.pem")
    assert scene.certificate("next.pem").subject == scene.certificate("device.pem").subject
    assert len(scene.audit("cmp.certificate.confirm")) == 1  # cr confirmed explicitly


def test_p10cr_by_the_current_certificate(scene: Scene) -> None:
    _current(scene)
    subprocess.run(["openssl", "req", "-new", "-key", scene.new_key("p10.key"), "-subj",
                    "/CN=sensor-7", "-addext", f"subjectAltName=URI:urn:iotpki:domain:{DOMAIN}",
                    "-out", "p10.csr"], cwd=scene.dir, check=True, capture_output=True, timeout=30)
    scene.cmp("-cmd", "p10cr", "-cert", "device.pem", "-key", "device.key", "-trusted",
              "root.pem", "-csr", "p10.csr", "-certout", "p10.pem")
    scene.verify("p10.pem")


def test_kur_renews_with_a_new_key(scene: Scene) -> None:
    _current(scene)
    scene.cmp("-cmd", "kur", "-cert", "device.pem", "-key", "device.key", "-trusted", "root.pem",
              "-newkey", scene.new_key("renewed.key"), "-certout", "renewed.pem")
    scene.verify("renewed.pem")
    old, new = scene.certificate("device.pem"), scene.certificate("renewed.pem")
    assert new.subject == old.subject and new.public_key() != old.public_key()
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(new))
    assert record.status is CertificateStatus.GOOD
