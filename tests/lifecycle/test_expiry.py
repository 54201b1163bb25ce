"""The expiry monitor with an injected clock: each certificate is announced once, when it
enters its profile's renewal window, with device.renewal_due for a device's identity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iotpki.app import PKI
from iotpki.core.ca.profile import RenewalWindow, parse_profile
from iotpki.core.errors import ConfigurationError
from iotpki.core.lifecycle.expiry import ExpiryMonitor
from tests.lifecycle.fleet import last_audit, operational_device, outbox
from tests.revocation.conftest import issue_operational
from tests.servers import ManualClock


def monitor(pki: PKI, clock: ManualClock) -> ExpiryMonitor:
    return ExpiryMonitor(pki.database.unit_of_work, pki.profiles, clock, batch=2)


def test_expiring_is_announced_once_inside_the_window(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    loose = [issue_operational(demo_pki, f"service-{n}") for n in range(3)]  # no device
    not_after = max(i.record.not_after for i in loose)
    clock = ManualClock()
    assert monitor(demo_pki, clock).scan() == []
    clock.moment = not_after - timedelta(days=30, seconds=1)  # operational: renewal_window 30d
    assert monitor(demo_pki, clock).scan() == []
    clock.advance(timedelta(seconds=2))
    notices = monitor(demo_pki, clock).scan()
    assert len(notices) == 4
    assert sorted(n.certificate.fingerprint for n in notices) == sorted(
        [fleet.operational.record.fingerprint, *(i.record.fingerprint for i in loose)])
    assert [n.device for n in notices if n.device] == [fleet.device_id]
    assert monitor(demo_pki, clock).scan() == []  # another run, or another node: nothing new
    expiring = outbox(demo_pki, "certificate.expiring")
    assert len(expiring) == 4
    (due,) = outbox(demo_pki, "device.renewal_due")
    assert due[1]["organization"] == "operatorco"
    assert due[1]["certificate"] == f"operatorco-operations:{fleet.operational.record.serial_hex}"
    assert last_audit(demo_pki, "certificate.expiring").outcome == "success"


def test_a_fraction_window_and_revoked_certificates(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    record = fleet.device.record  # device profile: 10 years, the default last third
    lifetime = record.not_after - record.not_before
    clock = ManualClock(record.not_after - lifetime / 3 + timedelta(hours=1))
    notices = monitor(demo_pki, clock).scan()
    assert fleet.device.record.fingerprint in {n.certificate.fingerprint for n in notices}
    retired = operational_device(demo_pki, 2)
    demo_pki.lifecycle.report(retired.device_id, "retired", "crm")
    clock.moment = retired.operational.record.not_after - timedelta(days=1)
    fingerprints = {n.certificate.fingerprint for n in monitor(demo_pki, clock).scan()}
    assert retired.operational.record.fingerprint not in fingerprints  # revoked: no renewal


@pytest.mark.parametrize(("value", "expected"), [
    ("25%", RenewalWindow(fraction=0.25)),
    ("30d", RenewalWindow(fraction=None, duration=timedelta(days=30))),
    (None, RenewalWindow())])
def test_renewal_window_in_profiles(value: str | None, expected: RenewalWindow) -> None:
    spec = {"kind": "operational", "validity": "1y", "key_types": ["ec-p256"],
            "key_usage": ["digital_signature"], **({"renewal_window": value} if value else {})}
    assert parse_profile("p", spec).renewal_window == expected


@pytest.mark.parametrize("value", ["0%", "100%", "400d", "soon", "-3d"])
def test_bad_renewal_window_is_refused(value: str) -> None:
    spec = {"kind": "operational", "validity": "1y", "key_types": ["ec-p256"],
            "key_usage": ["digital_signature"], "renewal_window": value}
    with pytest.raises(ConfigurationError, match="profile p"):
        parse_profile("p", spec)
