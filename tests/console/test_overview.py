"""Screen 1, the fleet overview: counts per profile and status, the expiry forecast and the
rates are the organization's own, and they follow revocations, holds and time."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.integration.principal import Role
from iotpki.core.lifecycle.fleet_overview import FleetOverview
from tests.api.conftest import OTHER, OWN, World, issue_operational
from tests.console.conftest import signed_in
from tests.servers import ManualClock


def expected_counts(pki: PKI, organization: str) -> Counter[tuple[str, str]]:
    records = pki.certificates.find(CertificateQuery(organization=organization, limit=None))
    now = pki.clock.now()
    return Counter((r.profile, "expired" if r.status.value == "good" and r.not_after < now
                    else r.status.value) for r in records)


def table_counts(html: str) -> Counter[tuple[str, str]]:
    table = html.split('id="by-profile"')[1].split("</table>")[0]
    statuses = ("good", "on-hold", "revoked", "expired")
    found: Counter[tuple[str, str]] = Counter()
    for row in re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", table):
        for status, cell in zip(statuses, re.findall(r'class="num">([\d,]+)<', row[1]), strict=True):
            if int(cell.replace(",", "")):
                found[(row[0], status)] = int(cell.replace(",", ""))
    return found


def test_the_overview_counts_only_the_organizations_certificates(world: World,
                                                                  console_app: Any) -> None:
    held = issue_operational(world.pki, "sensor-held")
    world.pki.revocation.revoke(held.authority, held.serial, x509.ReasonFlags.certificate_hold,
                                "test")
    revoked = issue_operational(world.pki, "sensor-revoked")
    world.pki.revocation.revoke(revoked.authority, revoked.serial,
                                x509.ReasonFlags.key_compromise, "test")
    for organization in (OWN, OTHER):
        client = signed_in(console_app, world, organization, Role.AUDITOR)
        try:
            page = client.get("/console/")
        finally:
            client.close()
        assert page.status_code == 200
        assert table_counts(page.text) == expected_counts(world.pki, organization)
        assert "<svg" in page.text and "expiring" in page.text
    own = table_counts(signed_in(console_app, world, OWN, Role.ADMIN).get("/console/").text)
    assert own[("operational", "on-hold")] >= 1 and own[("operational", "revoked")] >= 1


def test_forecast_and_rates_follow_the_clock(demo_pki: PKI) -> None:
    """With the clock moved past the certificates' lifetime, they count as expired and no
    longer in the forecast; issued in the last 24 hours counts what was issued then."""
    start = demo_pki.clock.now()
    record = issue_operational(demo_pki, "sensor-forecast")
    clock = ManualClock(start)
    fleet = FleetOverview(demo_pki.database.read_unit_of_work, clock)
    assert fleet.overview(OWN).rates.issued[0].count >= 1
    clock.advance(record.not_after - start - timedelta(days=10))  # ten days before it expires
    before = fleet.overview(OWN)
    assert before.months[0].count >= 1 and before.horizons[1].count >= 1
    assert before.rates.issued[0].count == 0 and before.rates.issued[1].count == 0
    clock.advance(timedelta(days=12))
    after = fleet.overview(OWN)
    assert after.total("expired") == before.total("expired") + 1
    assert after.total("good") == before.total("good") - 1
    assert after.months[0].count == before.months[0].count - 1


def test_forecast_slices_match_the_certificates(world: World) -> None:
    """Every horizon and month counts exactly the good certificates whose notAfter falls in
    it (one pass over the index, sliced; checked against the records themselves)."""
    for n in range(3):
        issue_operational(world.pki, f"sensor-slice-{n}")
    overview = FleetOverview(world.pki.database.read_unit_of_work, world.pki.clock).overview(OWN)
    records = [r for r in world.pki.certificates.find(
        CertificateQuery(organization=OWN, limit=None)) if r.status.value == "good"]
    for bucket in (*overview.horizons, *overview.months):
        expected = sum(1 for r in records
                       if overview.at <= r.not_after < bucket.end and r.not_after >= bucket.start)
        assert bucket.count == expected, bucket.label
