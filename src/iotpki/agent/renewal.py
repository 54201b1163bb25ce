"""When to renew: pure logic with an injected clock and random source.

- Window: renew at `fraction` of the certificate's lifetime (default two thirds, as
  smallstep's devices do), moved by a random `jitter` (± a fraction of the lifetime) drawn
  once per certificate, so that a fleet enrolled in one hour does not renew in one minute.
- Backoff: after a failure, wait `initial · 2^(n-1)` (capped at `maximum`), times a random
  factor in [½, 1] ("equal jitter"), before the next attempt.
- Grace: after notAfter the device still renews with its expired certificate for `grace`
  (when its profile allows it: devices offline for months); beyond that it must enroll
  again with its enrollment credentials.
- Rollover: when the CA certificates the server announces change (new issuing CA), the
  device renews at once to get a certificate from the new CA.
- Server window (ACME, RFC 9773 §4.2): when the server suggested a renewal window for the
  certificate, the device renews at a uniformly random time inside it (the certificate's
  draw, mapped to [0, 1]) instead of at its own fraction; without one, the fraction rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RenewalPolicy:
    fraction: float = 2 / 3
    jitter: float = 0.05
    backoff_initial: timedelta = timedelta(minutes=1)
    backoff_maximum: timedelta = timedelta(hours=6)
    grace: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not 0 <= self.fraction < 1:  # 0: renew at once (testing, a forced rotation)
            raise ValueError("renewal fraction must be at least 0 and below 1")
        if not 0 <= self.jitter < 1 - self.fraction:
            raise ValueError("renewal jitter must keep the window before notAfter")
        if self.backoff_initial <= timedelta(0) or self.backoff_maximum < self.backoff_initial:
            raise ValueError("backoff must be positive, and its maximum not below its start")


class Action(StrEnum):
    WAIT = "wait"
    RENEW = "renew"  # with the current certificate (possibly expired, within grace)
    ENROLL = "enroll"  # with the enrollment credentials (no certificate, or past grace)


@dataclass(frozen=True)
class Decision:
    action: Action
    at: datetime  # when to act (now for RENEW/ENROLL)
    reason: str


@dataclass(frozen=True)
class RenewalState:
    """What the scheduler remembers between runs (persisted by the agent as JSON)."""

    serial: int | None = None  # of the certificate renew_at was drawn for
    renew_at: datetime | None = None  # as of the last run; recomputed from `jitter` each run
    jitter: float | None = None  # the draw in [-1, 1] for this certificate
    failures: int = 0
    next_attempt: datetime | None = None
    last_error: str | None = None
    last_success: datetime | None = None
    # RFC 9773: the server's suggested window for `serial`, and when to ask again (§4.3)
    window_start: datetime | None = None
    window_end: datetime | None = None
    window_check: datetime | None = None


class RenewalScheduler:
    def __init__(self, policy: RenewalPolicy, clock: Clock = system_clock,
                 rng: random.Random | None = None) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng or random.Random()

    def now(self) -> datetime:
        return self._clock()

    def renewal_time(self, certificate: x509.Certificate) -> datetime:
        return self.window(certificate, self._rng.uniform(-1, 1))

    def window(self, certificate: x509.Certificate, draw: float) -> datetime:
        """When to renew under the current policy, for a jitter draw in [-1, 1]: computed
        on every decision, so a changed `fraction` or `jitter` applies to the installed
        certificate at the next start (not only to the next one)."""
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        offset = max(0.0, self.policy.fraction + self.policy.jitter * draw)
        return start + (end - start) * offset

    def renew_at(self, certificate: x509.Certificate, state: RenewalState) -> datetime:
        """The certificate's renewal time under the current policy, with its own jitter draw;
        none for a state of another certificate (installed by hand) or from before draws
        were kept: the window without jitter."""
        draw = state.jitter if certificate.serial_number == state.serial else None
        if draw is not None and state.window_start is not None and state.window_end is not None:
            # RFC 9773 §4.2: a uniformly random time inside the suggested window
            return state.window_start + (state.window_end - state.window_start) * (draw + 1) / 2
        return self.window(certificate, draw or 0.0)

    def installed(self, certificate: x509.Certificate) -> RenewalState:
        """A new certificate: draw its jitter once, forget the failures."""
        draw = self._rng.uniform(-1, 1)
        return RenewalState(certificate.serial_number, self.window(certificate, draw),
                            jitter=draw, last_success=self.now())

    def failed(self, state: RenewalState, error: str) -> RenewalState:
        failures = state.failures + 1
        delay = min(self.policy.backoff_maximum,
                    self.policy.backoff_initial * 2 ** min(failures - 1, 32))
        delay *= self._rng.uniform(0.5, 1.0)
        return replace(state, failures=failures, next_attempt=self.now() + delay,
                       last_error=error)

    def decide(self, certificate: x509.Certificate | None, state: RenewalState,
               ca_changed: bool = False) -> Decision:
        now = self.now()
        if certificate is None:
            return self._after_backoff(Action.ENROLL, now, now, state, "no certificate yet")
        renew_at = self.renew_at(certificate, state)
        not_after = certificate.not_valid_after_utc
        if now >= not_after + self.policy.grace:
            return self._after_backoff(Action.ENROLL, now, now, state,
                                       f"expired {not_after.isoformat()}, past the grace period")
        if now >= not_after:
            return self._after_backoff(Action.RENEW, now, now, state,
                                       "expired, within the grace period")
        if ca_changed:
            return self._after_backoff(Action.RENEW, now, now, state, "CA rollover")
        return self._after_backoff(Action.RENEW, renew_at, now, state, "renewal window")

    @staticmethod
    def _after_backoff(action: Action, due: datetime, now: datetime, state: RenewalState,
                       reason: str) -> Decision:
        if state.next_attempt is not None and state.failures and state.next_attempt > due:
            due, reason = state.next_attempt, f"{reason}; retry {state.failures} after backoff"
        if due > now:
            return Decision(Action.WAIT, due, f"{action.value} at {due.isoformat()}: {reason}")
        return Decision(action, now, reason)
