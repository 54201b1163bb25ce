"""The server side of renewal after expiry: the profile's `renewal_grace` (devices offline
for months), through the core's current-certificate method."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.settings import Settings
from tests.factories import domain_uri, make_csr
from tests.revocation.conftest import DOMAIN, issue_operational
from tests.servers import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def timed_pki(settings: Settings, clock: ManualClock) -> Iterator[PKI]:
    instance = build_pki(settings, clock)
    create_demo_hierarchy(instance)
    try:
        yield instance
    finally:
        instance.close()


def _renew(pki: PKI, issued: Issued, name: str) -> Issued | Rejected:
    csr, _ = make_csr(name, [domain_uri(DOMAIN)])
    outcome = pki.enrollment.enroll(EnrollmentRequest(
        csr=csr, requester="test", client_chain=(issued.certificate,), possession="tls"),
        "current-certificate")
    assert not isinstance(outcome, type(None))
    return outcome  # type: ignore[return-value]


def test_expired_certificate_renews_within_the_profiles_grace(timed_pki: PKI,
                                                              clock: ManualClock) -> None:
    assert timed_pki.profiles["operational"].renewal_grace == timedelta(days=180)
    issued = issue_operational(timed_pki, "sensor-offline")
    clock.moment = issued.certificate.not_valid_after_utc + timedelta(days=100)
    outcome = _renew(timed_pki, issued, "sensor-offline")
    assert isinstance(outcome, Issued), outcome
    assert outcome.certificate.not_valid_before_utc >= clock.moment - timedelta(minutes=5)


def test_past_the_grace_the_device_must_enroll_again(timed_pki: PKI,
                                                     clock: ManualClock) -> None:
    issued = issue_operational(timed_pki, "sensor-gone")
    clock.moment = issued.certificate.not_valid_after_utc + timedelta(days=181)
    outcome = _renew(timed_pki, issued, "sensor-gone")
    assert isinstance(outcome, Rejected) and outcome.reason.value == "certificate-expired"
    assert "grace" in outcome.detail
