"""A small fleet (20 virtual devices) against a real server, through the CLI code path."""

from __future__ import annotations

import pytest

from iotpki.cli.fleet import FleetOptions, simulate
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.ports import CertificateQuery
from tests.agent.conftest import CA, Servers


@pytest.mark.parametrize("protocol", ["cmp", "est"])
def test_twenty_devices_enroll_and_renew(servers: Servers, protocol: str) -> None:
    url = (f"{servers.http_url}/.well-known/cmp" if protocol == "cmp" else servers.https_url)
    before = len(_fleet_certificates(servers))  # the module's server is shared
    report = simulate(servers.pki, FleetOptions(20, url, protocol, concurrency=4, seed=1),
                      show_progress=False)
    assert (report.succeeded, report.failed) == (20, 0), report.errors
    assert report.devices_per_second > 0
    assert set(report.latency_ms) == {"enroll", "renew"}
    # one enrollment and one renewal per device
    assert len(_fleet_certificates(servers)) == before + 40


def _fleet_certificates(servers: Servers) -> list[CertificateRecord]:
    issued = servers.pki.certificates.find(CertificateQuery(authority=CA, limit=1000))
    return [r for r in issued if "fleet-" in r.subject]
