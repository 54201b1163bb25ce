"""certConf timeout (RFC 9483 §4.1.1): `openssl cmp -disable_confirm` takes its certificate
and never sends certConf; the periodic worker revokes the certificate (cessationOfOperation)
once the timeout has passed and closes the transaction, audited. With an injected clock
in-process, and end to end through the worker of a real `iotpki serve`."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.transaction_service import TransactionService
from iotpki.protocols.cmp.confirmation import ConfirmationTimeout
from tests.cmp.conftest import Scene
from tests.servers import ManualClock

pytestmark = pytest.mark.interop


def _unconfirmed(scene: Scene, name: str = "device", *extra: str) -> str:
    registration, secret = scene.secret_registration("CN=sensor-7")
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}",
              "-newkey", scene.new_key(f"{name}.key"), "-subject", "/CN=sensor-7",
              "-recipient", "/CN=iotpki", "-certout", f"{name}.pem", *extra)
    return fingerprint(scene.certificate(f"{name}.pem"))


def test_unconfirmed_certificate_is_revoked_after_the_timeout(scene: Scene) -> None:
    unconfirmed = _unconfirmed(scene, "lazy", "-disable_confirm")
    confirmed = _unconfirmed(scene, "good")  # explicit certConf → pkiConf
    clock = ManualClock(scene.pki.clock.now())
    timeout = ConfirmationTimeout(TransactionService(scene.pki.database.unit_of_work),
                                  scene.pki.certificates, scene.pki.revocation, clock,
                                  timedelta(minutes=10))
    clock.advance(timedelta(minutes=9))
    assert timeout.expire() == 0  # not yet
    clock.advance(timedelta(minutes=2))
    assert timeout.expire() == 1
    assert timeout.expire() == 0  # closed once
    lazy = scene.pki.certificates.get_by_fingerprint(unconfirmed)
    assert lazy.status is CertificateStatus.REVOKED
    assert lazy.revocation_reason == "cessationOfOperation"
    good = scene.pki.certificates.get_by_fingerprint(confirmed)
    assert good.status is CertificateStatus.GOOD
    expired = scene.audit("cmp.confirmation.expired")
    assert len(expired) == 1 and expired[0]["target"] == f"{lazy.authority}:{lazy.serial_hex}"
    assert expired[0]["reason"] == "cessationOfOperation" and expired[0]["waited_seconds"] >= 660
    assert [r["outcome"] for r in scene.audit("certificate.revoke")] == ["success"]


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CMP_CONFIRM_TIMEOUT", "1")


def test_the_server_worker_revokes_it(short_timeout: None, private_scene: Scene) -> None:
    scene = private_scene  # its server starts with the short timeout
    unconfirmed = _unconfirmed(scene, "lazy", "-disable_confirm")
    deadline = time.monotonic() + 60  # generous: on a loaded machine the worker lags
    while time.monotonic() < deadline:
        record = scene.pki.certificates.get_by_fingerprint(unconfirmed)
        expired = scene.audit("cmp.confirmation.expired")  # written after the revocation
        if record.status is CertificateStatus.REVOKED and expired:
            break
        time.sleep(0.5)
    assert record.status is CertificateStatus.REVOKED
    assert len(expired) == 1
