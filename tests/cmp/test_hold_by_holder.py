"""The holder of a certificate on hold cannot turn the hold into a revocation (issue 15 item
12): a thief with a lost device would block "found → release". `openssl cmp -cmd rr` signed
with the held certificate is refused (RFC 9483 §4.2: rp with status rejection, failInfo
notAuthorized); the operator still can. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.errors import AccessDeniedError
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.revocation.service import RevocationService
from tests.cmp.conftest import Scene

pytestmark = pytest.mark.interop


def _enrolled_and_held(scene: Scene) -> x509.Certificate:
    registration, secret = scene.secret_registration()
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}", "-implicit_confirm",
              "-newkey", scene.new_key("device.key"), "-subject", "/CN=sensor-7",
              "-recipient", "/CN=iotpki", "-certout", "device.pem")
    certificate = scene.certificate("device.pem")
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    scene.pki.revocation.revoke(record.authority, record.serial,
                                x509.ReasonFlags.certificate_hold, "operatorco:dm")  # lost
    return certificate


def test_holder_cannot_turn_a_hold_into_a_revocation(scene: Scene) -> None:
    certificate = _enrolled_and_held(scene)
    done = scene.cmp("-cmd", "rr", "-cert", "device.pem", "-key", "device.key",
                     "-oldcert", "device.pem", "-revreason", "1", "-trusted", "root.pem",
                     check=False)
    assert done.returncode != 0
    assert "notAuthorized" in done.stdout + done.stderr or "rejection" in done.stdout + done.stderr
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record.status is CertificateStatus.HELD  # still releasable when found
    scene.pki.revocation.release(record.authority, record.serial, "operatorco:dm")  # found


def test_the_operator_or_a_profile_that_says_so_may(scene: Scene) -> None:
    demo_pki = scene.pki  # the PKI behind the module's server
    certificate = _enrolled_and_held(scene)
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    strict = RevocationService(demo_pki.database.unit_of_work, demo_pki.clock)
    with pytest.raises(AccessDeniedError):
        strict.revoke(record.authority, record.serial, x509.ReasonFlags.key_compromise,
                      "holder", holder=True)
    profiles = {"operational": dataclasses.replace(demo_pki.profiles["operational"],
                                                   holder_revokes_hold=True)}
    lenient = RevocationService(
        demo_pki.database.unit_of_work, demo_pki.clock,
        holder_revokes_hold=lambda name: name in profiles and profiles[name].holder_revokes_hold)
    revoked = lenient.revoke(record.authority, record.serial, x509.ReasonFlags.key_compromise,
                             "holder", holder=True)
    assert revoked.status is CertificateStatus.REVOKED
