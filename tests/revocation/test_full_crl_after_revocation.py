"""Issue 23 item 1: a revocation reaches the full CRL at the certificate's CRL distribution
point within the operator's bound (IOTPKI_CRL_FULL_AFTER_CHANGE), so a relying party that
reads only full CRLs (`openssl verify -crl_check`, a broker's crlfile) refuses it.
RFC 5280 §5.1.2.5: nextUpdate is when the next CRL will be issued at the latest."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.app import PKI
from iotpki.core.errors import ConfigurationError
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.crl import CRLPolicy, due_kinds
from iotpki.core.revocation.status import CRLInfo, CRLKind
from iotpki.settings import Settings, crl_policy_from
from tests.revocation.conftest import CA, IssueFn, Server, fetch, revoke

BOUND = 5  # seconds, as an operator sets it for this test (the default is 30 s)
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _full(seq: int, age: timedelta) -> CRLInfo:
    return CRLInfo(CA, CRLKind.FULL, 1, None, seq, NOW - age, NOW + timedelta(hours=26), 0)


def test_a_change_makes_the_full_crl_due_after_the_debounce_window() -> None:
    now = NOW
    policy = CRLPolicy()
    assert policy.full_after_change <= timedelta(seconds=60)
    delta = CRLInfo(CA, CRLKind.DELTA, 1, 1, 5, now, now + timedelta(hours=2), 0)
    recent = _full(5, timedelta(seconds=10))
    older = _full(5, timedelta(seconds=31))
    assert due_kinds(policy, now, older, delta, 5) == []  # nothing changed
    # changed within the full CRL's window: the delta CRL now, the full one later
    assert due_kinds(policy, now, recent, delta, 6) == [CRLKind.DELTA]
    assert due_kinds(policy, now, older, delta, 6) == [CRLKind.FULL, CRLKind.DELTA]


def test_the_bound_is_set_by_the_operator_and_cannot_exceed_the_interval() -> None:
    assert crl_policy_from({"IOTPKI_CRL_FULL_AFTER_CHANGE": "5s"}).full_after_change == \
        timedelta(seconds=5)
    assert crl_policy_from({"IOTPKI_CRL_FULL_AFTER_CHANGE": "2m"}).full_after_change == \
        timedelta(minutes=2)
    with pytest.raises(ConfigurationError):
        crl_policy_from({"IOTPKI_CRL_FULL_AFTER_CHANGE": "2d"})


def test_next_update_promises_no_more_than_the_schedule() -> None:
    """A relying party keeps a CRL until nextUpdate: it must not outlive the next one by
    more than a margin (the full CRL was valid 7 days while re-issued daily)."""
    policy = CRLPolicy()
    assert policy.full_interval < policy.full_validity <= policy.full_interval * 1.25
    assert policy.delta_interval < policy.delta_validity <= policy.delta_interval * 3


@pytest.fixture
def prompt_server(demo_pki: PKI, settings: Settings, http_port: int,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("IOTPKI_CRL_FULL_AFTER_CHANGE", f"{BOUND}s")
    running = Server(settings, http_port)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _cdp(certificate: x509.Certificate) -> str:
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    name = points[0].full_name
    assert name is not None
    return str(name[0].value)


def _verify(issued: Issued, crl_der: bytes, directory: Path) -> subprocess.CompletedProcess[str]:
    (directory / "leaf.pem").write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    (directory / "ca.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM)
                                                for c in issued.chain))
    crl = x509.load_der_x509_crl(crl_der)
    (directory / "crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    return subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(directory / "ca.pem"),
         "-CRLfile", str(directory / "crl.pem"), str(directory / "leaf.pem")],
        capture_output=True, text=True, timeout=30, check=False)


def _full_crl_at(url: str, deadline: float, serial: int | None) -> tuple[bytes, float]:
    """The full CRL served at `url`; with `serial`, wait until it lists that serial."""
    start = time.monotonic()
    while True:
        code, _, body = fetch(url)
        if code == 200 and (serial is None or x509.load_der_x509_crl(body)
                            .get_revoked_certificate_by_serial_number(serial) is not None):
            return body, time.monotonic() - start
        assert time.monotonic() - start < deadline, f"{url} never listed {serial}"
        time.sleep(0.2)


def test_openssl_refuses_a_revoked_certificate_with_the_full_crl_from_its_cdp(
        prompt_server: Server, demo_pki: PKI, issue: IssueFn, tmp_path: Path) -> None:
    sensor = issue("sensor-revoked")
    url = _cdp(sensor.certificate)
    assert url.startswith(prompt_server.url) and url.endswith(f"/crl/{CA}.crl")
    before, _ = _full_crl_at(url, 30, None)
    assert _verify(sensor, before, tmp_path).returncode == 0
    revoke(demo_pki, sensor, x509.ReasonFlags.key_compromise)
    # within the bound after the first full CRL's window (it may have just been published)
    after, waited = _full_crl_at(url, 2 * BOUND + 15, sensor.record.serial)
    refused = _verify(sensor, after, tmp_path)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr
    crl = x509.load_der_x509_crl(after)
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == CRLPolicy().full_validity
    print(f"listed in the full CRL {waited:.1f} s after the revocation")


def test_a_burst_of_revocations_is_debounced(prompt_server: Server, demo_pki: PKI,
                                             issue: IssueFn) -> None:
    """Two revocations in quick succession: each is listed within the bound after the
    window of the previous full CRL, and full CRLs come at most one per window."""
    first, second = issue("burst-1"), issue("burst-2")
    url = _cdp(first.certificate)
    _full_crl_at(url, 30, None)
    revoke(demo_pki, first, x509.ReasonFlags.key_compromise)
    with_first, _ = _full_crl_at(url, 2 * BOUND + 15, first.record.serial)
    revoke(demo_pki, second, x509.ReasonFlags.superseded)
    with_second, _ = _full_crl_at(url, 2 * BOUND + 15, second.record.serial)
    gap = (x509.load_der_x509_crl(with_second).last_update_utc
           - x509.load_der_x509_crl(with_first).last_update_utc)
    assert gap >= timedelta(seconds=BOUND - 1)  # thisUpdate has whole seconds
