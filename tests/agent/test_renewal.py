"""The renewal scheduler with an injected clock and random source: window, jitter,
backoff, grace after expiry, CA rollover."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from iotpki.agent.renewal import Action, RenewalPolicy, RenewalScheduler, RenewalState
from tests.agent.certs import START, certificate
from tests.servers import ManualClock


def scheduler(policy: RenewalPolicy | None = None, seed: int = 7,
              at: datetime = START) -> tuple[RenewalScheduler, ManualClock]:
    clock = ManualClock(at)
    return RenewalScheduler(policy or RenewalPolicy(), clock, random.Random(seed)), clock


def test_no_certificate_means_enroll_now() -> None:
    plan, clock = scheduler()
    decision = plan.decide(None, RenewalState())
    assert (decision.action, decision.at) == (Action.ENROLL, clock.moment)


def test_window_at_two_thirds_without_jitter() -> None:
    plan, clock = scheduler(RenewalPolicy(jitter=0))
    cert, _ = certificate(days=90)
    state = plan.installed(cert)
    assert state.renew_at == START + timedelta(days=60)
    clock.moment = START + timedelta(days=59, hours=23)
    decision = plan.decide(cert, state)
    assert decision.action is Action.WAIT and decision.at == START + timedelta(days=60)
    clock.moment = START + timedelta(days=60)
    assert plan.decide(cert, state).action is Action.RENEW


def test_configurable_fraction() -> None:
    plan, _ = scheduler(RenewalPolicy(fraction=0.5, jitter=0))
    cert, _ = certificate(days=100)
    assert plan.installed(cert).renew_at == START + timedelta(days=50)


def test_jitter_spreads_a_fleet_within_its_bounds() -> None:
    plan, _ = scheduler(RenewalPolicy(jitter=0.05))
    cert, _ = certificate(days=100)
    times = [plan.renewal_time(cert) for _ in range(500)]
    low, high = START + timedelta(days=100 * (2 / 3 - 0.05)), START + timedelta(days=100 * (2 / 3 + 0.05))
    assert all(low <= t <= high for t in times)
    assert len(set(times)) > 450  # spread, not one instant
    assert max(times) - min(times) > timedelta(days=8)


def test_jitter_is_drawn_once_per_certificate() -> None:
    plan, clock = scheduler()
    cert, _ = certificate(days=90)
    state = plan.installed(cert)
    clock.moment = START + timedelta(days=10)
    first = plan.decide(cert, state)
    second = plan.decide(cert, state)
    assert first.at == second.at == state.renew_at


def test_same_seed_same_schedule() -> None:
    cert, _ = certificate(days=90)
    assert scheduler(seed=3)[0].installed(cert) .renew_at == scheduler(seed=3)[0].installed(cert).renew_at


def test_exponential_backoff_with_cap() -> None:
    policy = RenewalPolicy(jitter=0, backoff_initial=timedelta(minutes=1),
                           backoff_maximum=timedelta(hours=1))
    plan, clock = scheduler(policy)
    cert, _ = certificate(days=90)
    clock.moment = START + timedelta(days=61)
    state = plan.installed(cert)
    delays = []
    for _ in range(10):
        state = plan.failed(state, "server down")
        assert state.next_attempt is not None
        delays.append(state.next_attempt - clock.moment)
        decision = plan.decide(cert, state)
        assert decision.action is Action.WAIT and decision.at == state.next_attempt
        assert "retry" in decision.reason
    for attempt, delay in enumerate(delays[:6]):
        nominal = timedelta(minutes=2 ** attempt)
        assert nominal / 2 <= delay <= nominal  # equal jitter in [½, 1]
    assert all(d <= timedelta(hours=1) for d in delays) and delays[-1] >= timedelta(minutes=30)
    clock.moment = state.next_attempt  # type: ignore[assignment]
    assert plan.decide(cert, state).action is Action.RENEW
    assert state.failures == 10 and state.last_error == "server down"


def test_success_clears_the_failures() -> None:
    plan, clock = scheduler()
    cert, _ = certificate(days=90)
    state = plan.failed(plan.installed(cert), "boom")
    new, _ = certificate(START + timedelta(days=60), serial=2)
    clock.moment = START + timedelta(days=60)
    fresh = plan.installed(new)
    assert fresh.failures == 0 and fresh.next_attempt is None and fresh.serial == 2
    assert state.failures == 1


def test_expired_within_grace_renews_with_the_old_certificate() -> None:
    plan, clock = scheduler(RenewalPolicy(grace=timedelta(days=180)))
    cert, _ = certificate(days=90)
    state = plan.installed(cert)
    clock.moment = START + timedelta(days=90 + 120)  # offline for four months
    decision = plan.decide(cert, state)
    assert decision.action is Action.RENEW and "grace" in decision.reason


def test_past_the_grace_the_device_enrolls_again() -> None:
    plan, clock = scheduler(RenewalPolicy(grace=timedelta(days=180)))
    cert, _ = certificate(days=90)
    clock.moment = START + timedelta(days=90 + 181)
    decision = plan.decide(cert, plan.installed(cert))
    assert decision.action is Action.ENROLL and "past the grace" in decision.reason


def test_without_grace_an_expired_certificate_means_enroll() -> None:
    plan, clock = scheduler()
    cert, _ = certificate(days=90)
    clock.moment = START + timedelta(days=90)
    assert plan.decide(cert, plan.installed(cert)).action is Action.ENROLL


def test_ca_rollover_renews_at_once() -> None:
    plan, clock = scheduler()
    cert, _ = certificate(days=90)
    state = plan.installed(cert)
    clock.moment = START + timedelta(days=1)
    assert plan.decide(cert, state).action is Action.WAIT
    decision = plan.decide(cert, state, ca_changed=True)
    assert decision.action is Action.RENEW and decision.reason == "CA rollover"


def test_rollover_still_respects_backoff() -> None:
    plan, clock = scheduler()
    cert, _ = certificate(days=90)
    clock.moment = START + timedelta(days=1)
    state = plan.failed(plan.installed(cert), "refused")
    assert plan.decide(cert, state, ca_changed=True).action is Action.WAIT


def test_state_of_another_certificate_uses_the_plain_window() -> None:
    plan, clock = scheduler()
    cert, _ = certificate(days=90, serial=5)
    clock.moment = START + timedelta(days=1)
    decision = plan.decide(cert, RenewalState(serial=4, renew_at=START))
    assert decision.action is Action.WAIT and decision.at == START + timedelta(days=60)


@pytest.mark.parametrize("fields", [{"fraction": 1.2}, {"fraction": 0.5, "jitter": 0.6},
                                    {"backoff_initial": timedelta(0)},
                                    {"backoff_initial": timedelta(hours=2),
                                     "backoff_maximum": timedelta(hours=1)}])
def test_bad_policies_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RenewalPolicy(**fields)  # type: ignore[arg-type]


def test_a_changed_fraction_applies_to_the_installed_certificate() -> None:
    """Issue 23 item 5: the window is recomputed from the configuration at every start,
    with the certificate's own jitter draw kept."""
    plan, clock = scheduler(RenewalPolicy(fraction=2 / 3, jitter=0.05))
    cert, _ = certificate(days=90)
    state = plan.installed(cert)
    assert state.jitter is not None and -1 <= state.jitter <= 1
    later = RenewalScheduler(RenewalPolicy(fraction=0.5, jitter=0.05), clock)
    decision = later.decide(cert, state)
    assert decision.at == START + timedelta(days=90) * (0.5 + 0.05 * state.jitter)
    assert decision.at < state.renew_at  # type: ignore[operator]


def test_fraction_zero_renews_at_once() -> None:
    plan, clock = scheduler(RenewalPolicy(fraction=0, jitter=0.05))
    cert, _ = certificate(days=90)
    clock.moment = START + timedelta(minutes=1)
    assert plan.decide(cert, plan.installed(cert)).action is Action.RENEW


def test_rfc9773_s4_2_a_random_time_inside_the_servers_window() -> None:
    """With a suggested window (ACME renewalInfo) the certificate's draw places the renewal
    uniformly inside it, not at the fraction; a state of another certificate ignores it."""
    from dataclasses import replace

    cert, _ = certificate(days=90)
    start, end = START + timedelta(days=10), START + timedelta(days=12)
    times = set()
    for seed in range(20):
        plan, clock = scheduler(seed=seed)
        state = replace(plan.installed(cert), window_start=start, window_end=end)
        at = plan.renew_at(cert, state)
        assert start <= at <= end
        times.add(at)
        clock.moment = at - timedelta(seconds=1)
        assert plan.decide(cert, state).action is Action.WAIT
        clock.moment = at
        assert plan.decide(cert, state).action is Action.RENEW
    assert len(times) == 20
    other = RenewalState(serial=cert.serial_number + 1, jitter=0.5, window_start=start,
                         window_end=end)
    assert scheduler()[0].renew_at(cert, other) == START + timedelta(days=60)
