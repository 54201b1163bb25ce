"""The agent proper: enroll, renew, report status, and run the renewal loop.

It glues the key store, an enrollment client (EST, CMP or ACME), the scheduler and the hooks;
time and randomness come from the scheduler, so tests drive it with an injected clock.
State between runs (the drawn renewal time, failures, backoff, the server's suggested
window) is `state.json` in the agent directory, written atomically.

Over ACME the agent asks the server's renewalInfo (RFC 9773) for its certificate at each
step once the last answer's Retry-After has passed, and renews inside the suggested window
(`renewal.py`); a server without renewalInfo leaves the agent's own fraction rule.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from iotpki.agent.config import AgentConfig, Hook
from iotpki.agent.credentials import Credentials
from iotpki.agent.errors import AgentError
from iotpki.agent.hooks import HookResult, run_hooks
from iotpki.agent.keystore import Identity, KeyStore, PendingKey, write_atomic
from iotpki.agent.renewal import Action, Decision, RenewalScheduler, RenewalState
from iotpki.agent.trust import Trust

STATE_FILE = "state.json"
# Versions kept after a renewal: the current one and two before it (to roll back by hand);
# older keys go, so a device does not keep every key it ever had.
KEEP_VERSIONS = 3


class EnrollmentClient(Protocol):
    def enroll(self, pending: PendingKey, subject: x509.Name, credentials: Credentials,
               sans: list[x509.GeneralName] | None = None) -> list[x509.Certificate]: ...

    def renew(self, identity: Identity, pending: PendingKey) -> list[x509.Certificate]: ...


# The CA certificates the server announces now (EST cacerts, CMP genm caCerts).
CASource = Callable[[Identity | None], list[x509.Certificate]]


class Window(Protocol):
    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...

    @property
    def retry_after(self) -> float: ...  # seconds


# The server's suggested renewal window (ACME renewalInfo, RFC 9773), None if it has none.
RenewalInfoSource = Callable[[Identity], Window | None]


@dataclass
class StepResult:
    decision: Decision
    identity: Identity | None = None
    error: str | None = None
    hooks: list[HookResult] = field(default_factory=list)


class Agent:
    def __init__(self, config: AgentConfig, store: KeyStore, trust: Trust,
                 client: EnrollmentClient, scheduler: RenewalScheduler,
                 ca_source: CASource | None = None,
                 credentials: Callable[[], Credentials] | None = None,
                 state_path: Path | None = None, close: Callable[[], None] | None = None,
                 renewal_info: RenewalInfoSource | None = None) -> None:
        self.config = config
        self.store = store
        self.trust = trust
        self.client = client
        self.scheduler = scheduler
        self._ca_source = ca_source
        self._credentials = credentials or config.credentials
        self._state_path = state_path
        self.state = self._load_state()
        self.last_hooks: list[HookResult] = []
        self._last_ca_check: datetime | None = None
        self._close = close
        self._renewal_info = renewal_info

    def close(self) -> None:
        """Close the agent's connections."""
        if self._close is not None:
            self._close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the commands ---------------------------------------------------------------------

    def enroll(self) -> Identity:
        pending = self.store.new_key(self.config.key_type)
        chain = self.client.enroll(pending, self.config.subject, self._credentials())
        return self._installed(pending, chain)

    def renew(self) -> Identity:
        identity = self.store.current()
        if identity is None:
            raise AgentError("nothing to renew: enroll first")
        pending = self.store.new_key(self.config.key_type)
        return self._installed(pending, self.client.renew(identity, pending))

    def status(self) -> dict[str, Any]:
        identity = self.store.current()
        certificate = identity.certificate if identity else None
        decision = self.scheduler.decide(certificate, self.state)
        return {
            "subject": certificate.subject.rfc4514_string() if certificate else None,
            "serial": f"{certificate.serial_number:x}" if certificate else None,
            "issuer": certificate.issuer.rfc4514_string() if certificate else None,
            "not_before": certificate.not_valid_before_utc.isoformat() if certificate else None,
            "not_after": certificate.not_valid_after_utc.isoformat() if certificate else None,
            "version": identity.version if identity else None,
            "renew_at": _iso(self.scheduler.renew_at(certificate, self.state) if certificate
                             else self.state.renew_at), "failures": self.state.failures,
            "next_attempt": _iso(self.state.next_attempt), "last_error": self.state.last_error,
            "suggested_window": [_iso(self.state.window_start), _iso(self.state.window_end)]
            if self.state.window_start is not None else None,
            "next_action": decision.action.value, "next_action_at": decision.at.isoformat(),
            "reason": decision.reason,
        }

    def step(self) -> StepResult:
        """One tick of the loop: decide, and enroll or renew when due."""
        identity = self.store.current()
        if identity is not None:
            self._ask_renewal_info(identity)
        ca_changed = self._ca_rolled_over(identity)
        decision = self.scheduler.decide(identity.certificate if identity else None,
                                         self.state, ca_changed)
        if decision.action is Action.WAIT:
            return StepResult(decision, identity)
        try:
            done = self.enroll() if decision.action is Action.ENROLL else self.renew()
        except (AgentError, OSError, ValueError) as exc:
            self.state = self.scheduler.failed(self.state, f"{decision.action.value}: {exc}")
            self._save_state()
            return StepResult(decision, identity, error=str(exc))
        return StepResult(decision, done, hooks=self.last_hooks)

    def run(self, stop: threading.Event, max_steps: int | None = None,
            on_step: Callable[[StepResult], None] | None = None) -> None:
        steps = 0
        while not stop.is_set() and (max_steps is None or steps < max_steps):
            result = self.step()
            steps += 1
            if on_step is not None:
                on_step(result)
            if max_steps is not None and steps >= max_steps:
                break
            wait = self.config.check_interval
            if result.decision.action is Action.WAIT:
                until = (result.decision.at - self.scheduler.now()).total_seconds()
                wait = max(1.0, min(wait, until))
            elif result.error is not None and self.state.next_attempt is not None:
                wait = max(1.0, min(wait, (self.state.next_attempt
                                           - self.scheduler.now()).total_seconds()))
            else:
                wait = 0.0
            if self.state.window_check is not None and wait > 0:
                wait = max(1.0, min(wait, (self.state.window_check
                                           - self.scheduler.now()).total_seconds()))
            stop.wait(wait)

    # -- internals --------------------------------------------------------------------------

    def _installed(self, pending: PendingKey, chain: list[x509.Certificate]) -> Identity:
        identity = self.store.install(pending, chain)
        self.store.prune(KEEP_VERSIONS)
        self._save_anchors()
        self.state = self.scheduler.installed(identity.certificate)
        self._save_state()
        self.last_hooks = run_hooks(self.config.hooks, hook_environment(identity))
        return identity

    def _ask_renewal_info(self, identity: Identity) -> None:
        """RFC 9773 §4.2-4.3: ask for the certificate's suggested window, again only after the
        last answer's Retry-After; a failed question keeps the window known and is asked
        again after `check_interval`."""
        state = self.state
        if (self._renewal_info is None
                or state.serial != identity.certificate.serial_number):
            return
        now = self.scheduler.now()
        if state.window_check is not None and now < state.window_check:
            return
        try:
            window = self._renewal_info(identity)
        except (AgentError, OSError, ValueError):
            self.state = replace(state, window_check=now + timedelta(
                seconds=self.config.check_interval))
        else:
            later = timedelta(seconds=window.retry_after if window is not None
                              else self.config.check_interval)
            self.state = replace(state, window_start=window.start if window else None,
                                 window_end=window.end if window else None,
                                 window_check=now + later)
        self._save_state()

    def _ca_rolled_over(self, identity: Identity | None) -> bool:
        """RFC 7030 §4.1.3 / RFC 9483 §4.3.1: the server announces its CA certificates; an
        issuing CA other than our certificate's issuer means a rollover: renew now."""
        if self._ca_source is None or identity is None:
            return False
        now = self.scheduler.now()
        if (self._last_ca_check is not None
                and (now - self._last_ca_check).total_seconds() < self.config.check_interval):
            return False
        self._last_ca_check = now
        try:
            announced = self._ca_source(identity)
        except (AgentError, OSError, ValueError):
            return False  # the renewal attempt will report the server's state
        self._save_anchors()
        issuers = [c for c in announced if c.subject == identity.certificate.issuer]
        return bool(issuers) and all(c not in identity.chain for c in issuers)

    def _save_anchors(self) -> None:
        saver = getattr(self.store, "save_anchors", None)
        if saver is not None:
            saver(self.trust.anchors)

    def _load_state(self) -> RenewalState:
        if self._state_path is None or not self._state_path.exists():
            return RenewalState()
        raw = json.loads(self._state_path.read_text())
        for name in ("renew_at", "next_attempt", "last_success", "window_start", "window_end",
                     "window_check"):
            if raw.get(name):
                raw[name] = datetime.fromisoformat(raw[name])
        return RenewalState(**raw)

    def _save_state(self) -> None:
        if self._state_path is None:
            return
        raw = {k: (v.isoformat() if isinstance(v, datetime) else v)
               for k, v in asdict(self.state).items()}
        self._state_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self._state_path, json.dumps(raw, indent=2).encode(), 0o600)


def hook_environment(identity: Identity) -> dict[str, str]:
    environment = {"IOTPKI_AGENT_SERIAL": f"{identity.certificate.serial_number:x}",
                   "IOTPKI_AGENT_VERSION": identity.version}
    if identity.chain_file is not None:
        environment["IOTPKI_AGENT_CHAIN"] = str(identity.chain_file)
    if identity.key_file is not None:
        environment["IOTPKI_AGENT_KEY"] = str(identity.key_file)
    return environment


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


__all__ = ["Agent", "CASource", "EnrollmentClient", "Hook", "StepResult"]
