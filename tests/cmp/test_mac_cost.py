"""The cost of MAC protection (issue 15 item 6, issue 13 "Algorithms"), attacked in process.

- RFC 9481 §6.1.2: PBMAC1 with 262,144 iterations and every SHA-2 PRF is accepted; so is
  PasswordBasedMac with every SHA-2 OWF.
- The reference is looked up before any derivation: an unknown senderKID costs nothing.
- Failed MAC checks are throttled per reference and per client address
  (`protocols.cmp.throttle`): once a budget is spent, requests are refused with
  systemUnavail before any derivation (RFC 9483 §3.6.4), audited, until the window moves on.
The budget is kept in the database (`core.ra.failure_budget`): every worker and node shares
it, and a restart does not reset it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.protocols.cmp.routes import answer_bytes
from iotpki.protocols.cmp.throttle import PER_ADDRESS, PER_REFERENCE, WINDOW
from iotpki.settings import Settings
from iotpki.wire.cmp.client_requests import encode_mac_request
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.pbmac1 import PBMAC1Parameters
from iotpki.wire.cmp.protection import MACProtection, PBMParameters
from iotpki.wire.cmp.requests import genm_body
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import CA, DOMAIN, error_failures
from tests.servers import ManualClock

HMAC_SHA256 = "1.2.840.113549.2.9"
PRFS = {"sha224": "1.2.840.113549.2.8", "sha256": HMAC_SHA256,
        "sha384": "1.2.840.113549.2.10", "sha512": "1.2.840.113549.2.11",
        "sha512-224": "1.2.840.113549.2.12", "sha512-256": "1.2.840.113549.2.13"}
OWFS = {"sha224": "2.16.840.1.101.3.4.2.4", "sha256": "2.16.840.1.101.3.4.2.1",
        "sha384": "2.16.840.1.101.3.4.2.2", "sha512": "2.16.840.1.101.3.4.2.3",
        "sha512-224": "2.16.840.1.101.3.4.2.5", "sha512-256": "2.16.840.1.101.3.4.2.6"}
ITERATIONS = 262_144
ATTACKER, DEVICE = "198.51.100.7", "192.0.2.10"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def pki(tmp_path: object, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[PKI]:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    instance = build_pki(Settings(data_dir=tmp_path / "data"), clock=clock)  # type: ignore[operator]
    create_demo_hierarchy(instance)
    try:
        yield instance
    finally:
        instance.close()


def _reference(pki: PKI, name: str) -> str:
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET, domain=DOMAIN,
        reference=name, uses=100), "operatorco:crm")
    assert created.secret is not None
    return created.secret


def _pbmac1(secret: str, prf: str = HMAC_SHA256, iterations: int = ITERATIONS) -> MACProtection:
    return MACProtection(secret.encode(), PBMAC1Parameters(os.urandom(16), iterations, None,
                                                           prf, HMAC_SHA256))


def _request(pki: PKI, kid: str, protection: MACProtection) -> bytes:
    return encode_mac_request("genm", genm_body(["1.3.6.1.5.5.7.4.17"]), protection,
                              kid.encode(), pki.clock.now(), sender=parse_subject("CN=line"))


def _genm(pki: PKI, kid: str, protection: MACProtection, address: str) -> bytes:
    return answer_bytes(pki.cmp, "", _request(pki, kid, protection), address)


def _served(pki: PKI, der: bytes, address: str) -> tuple[float, bytes]:
    """The server's CPU time for one request (the client's MAC is computed beforehand)."""
    start = time.process_time()
    answer = answer_bytes(pki.cmp, "", der, address)
    return time.process_time() - start, answer


@pytest.mark.parametrize("prf", sorted(PRFS))
def test_pbmac1_with_262144_iterations_and_every_sha2_prf(pki: PKI, prf: str) -> None:
    """RFC 9481 §6.1.2, RFC 8018 §5.2; the answer is MACed the same way."""
    secret = _reference(pki, "line-1")
    answer = _genm(pki, "line-1", _pbmac1(secret, PRFS[prf]), DEVICE)
    assert decode_pki_message(answer).body_type == "genp"


@pytest.mark.parametrize("owf", sorted(OWFS))
def test_password_based_mac_with_every_sha2_owf(pki: PKI, owf: str) -> None:
    """RFC 9481 §6.1.1 (RFC 4211 §4.4)."""
    secret = _reference(pki, "line-1")
    protection = MACProtection(secret.encode(), PBMParameters(os.urandom(16), OWFS[owf], 10_000,
                                                              HMAC_SHA256))
    assert decode_pki_message(_genm(pki, "line-1", protection, DEVICE)).body_type == "genp"


def test_guessing_a_reference_is_throttled_before_any_derivation(pki: PKI,
                                                                 clock: ManualClock) -> None:
    """The attack: wrong secrets at 600,000 PBMAC1 iterations for a known reference."""
    secret = _reference(pki, "line-2")
    costly = _pbmac1("guess", iterations=600_000)
    checked, refused = [], []
    for _ in range(PER_REFERENCE):
        cpu, answer = _served(pki, _request(pki, "line-2", costly), ATTACKER)
        assert error_failures(answer) == ("error", {"badMessageCheck"})
        checked.append(cpu)
    for _ in range(5):
        cpu, answer = _served(pki, _request(pki, "line-2", costly), ATTACKER)
        assert error_failures(answer) == ("error", {"systemUnavail"})
        refused.append(cpu)
    # Refusals spend no derivation: a fraction of the CPU time of one checked MAC.
    assert max(refused) < min(checked) / 3, (refused, checked)
    # The reference's budget is spent: its legitimate client waits for the window too ...
    assert error_failures(_genm(pki, "line-2", _pbmac1(secret), DEVICE)) == (
        "error", {"systemUnavail"})
    clock.moment += WINDOW  # ... and is served once it has moved on
    assert decode_pki_message(_genm(pki, "line-2", _pbmac1(secret), DEVICE)).body_type == "genp"
    audited = [e.record.details for e in pki.audit.entries(limit=None)
               if e.record.action == "cmp.request"]
    assert [d["failure"] for d in audited] == ["badMessageCheck"] * PER_REFERENCE + [
        "systemUnavail"] * 6
    assert "too many failed MAC checks for this reference" in str(audited[-1]["detail"])


def test_an_address_spraying_references_is_throttled(pki: PKI) -> None:
    """One address, a different reference each time: its own budget ends the attack, while
    other addresses are still served."""
    references = [f"batch-{n}" for n in range(PER_ADDRESS + 2)]
    secrets = [_reference(pki, r) for r in references]
    wrong = _pbmac1("guess", iterations=1000)
    for reference in references[:PER_ADDRESS]:
        assert error_failures(_genm(pki, reference, wrong, ATTACKER)) == (
            "error", {"badMessageCheck"})
    assert error_failures(_genm(pki, references[-1], wrong, ATTACKER)) == (
        "error", {"systemUnavail"})
    good = _genm(pki, references[-1], _pbmac1(secrets[-1], iterations=1000), DEVICE)
    assert decode_pki_message(good).body_type == "genp"


def test_an_unknown_reference_costs_no_derivation(pki: PKI) -> None:
    _reference(pki, "line-3")
    costly = _pbmac1("guess", iterations=600_000)
    known, answer = _served(pki, _request(pki, "line-3", costly), ATTACKER)
    assert error_failures(answer) == ("error", {"badMessageCheck"})
    unknown, answer = _served(pki, _request(pki, "no-such-line", costly), ATTACKER)
    assert error_failures(answer) == ("error", {"badMessageCheck"})
    assert unknown < known / 3, (unknown, known)


def test_the_budget_is_shared_by_every_worker_and_survives_a_restart(
        pki: PKI, clock: ManualClock) -> None:
    """Issue 13 item 5: `serve --workers N` runs N processes, each with its own CMP server;
    a second PKI over the same data directory stands for another worker (or a restart).
    Failures spent on one count on the other."""
    _reference(pki, "line-4")
    other = build_pki(pki.settings, clock=clock)
    try:
        wrong = _pbmac1("guess", iterations=1000)
        for index in range(PER_REFERENCE):
            worker = pki if index % 2 else other
            assert error_failures(_genm(worker, "line-4", wrong, f"203.0.113.{index}")) == (
                "error", {"badMessageCheck"})
        for worker in (pki, other):
            assert error_failures(_genm(worker, "line-4", wrong, DEVICE)) == (
                "error", {"systemUnavail"})
    finally:
        other.close()
    restarted = build_pki(pki.settings, clock=clock)
    try:
        assert error_failures(_genm(restarted, "line-4", wrong, DEVICE)) == (
            "error", {"systemUnavail"})
    finally:
        restarted.close()
