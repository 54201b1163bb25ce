"""The agent's loop with an injected clock: it waits for the window, renews, backs off after
failures, renews within the grace period, re-enrolls past it, renews at once on a CA
rollover, and runs its hooks (with a timeout). The enrollment client is a small CA of the
test implementing the agent's `EnrollmentClient` protocol."""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iotpki.agent.acme_client import SuggestedWindow
from iotpki.agent.config import AgentConfig, Hook
from iotpki.agent.credentials import Credentials
from iotpki.agent.device import Agent, EnrollmentClient
from iotpki.agent.errors import TransportError
from iotpki.agent.keystore import FileKeyStore, Identity, PendingKey
from iotpki.agent.renewal import Action, RenewalPolicy, RenewalScheduler
from iotpki.agent.trust import Trust
from iotpki.wire.names import parse_subject
from tests.agent.certs import START
from tests.servers import ManualClock


class LocalCA:
    """Issues 90-day certificates at the clock's time; can be told to fail or roll over."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.failing = False
        self.calls: list[str] = []
        self.roll_over()

    def roll_over(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
        self.certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(START - timedelta(days=1))
                            .not_valid_after(START + timedelta(days=3650))
                            .add_extension(x509.BasicConstraints(True, None), critical=True)
                            .sign(self.key, hashes.SHA256()))

    def _issue(self, kind: str, pending: PendingKey, subject: x509.Name) -> list[x509.Certificate]:
        self.calls.append(kind)
        if self.failing:
            raise TransportError("server unreachable")
        now = self.clock()
        leaf = (x509.CertificateBuilder().subject_name(subject)
                .issuer_name(self.certificate.subject).public_key(pending.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + timedelta(days=90)).sign(self.key, hashes.SHA256()))
        return [leaf, self.certificate]

    def enroll(self, pending: PendingKey, subject: x509.Name, credentials: Credentials,
               sans: list[x509.GeneralName] | None = None) -> list[x509.Certificate]:
        return self._issue("enroll", pending, subject)

    def renew(self, identity: Identity, pending: PendingKey) -> list[x509.Certificate]:
        return self._issue("renew", pending, identity.certificate.subject)

    def ca_certs(self, _identity: Identity | None) -> list[x509.Certificate]:
        return [self.certificate]


def make_agent(tmp_path: Path, hooks: tuple[Hook, ...] = (), grace: timedelta = timedelta(0),
               ca: LocalCA | None = None) -> tuple[Agent, LocalCA, ManualClock]:
    clock = ca.clock if ca is not None else ManualClock(START)
    ca = ca or LocalCA(clock)
    client: EnrollmentClient = ca  # checked by mypy: the fake has the real protocol
    config = AgentConfig(tmp_path / "agent", "est", "https://unused.example", (),
                         parse_subject("CN=sensor-loop"), hooks=hooks, check_interval=3600,
                         policy=RenewalPolicy(jitter=0.05, grace=grace))
    agent = Agent(config, FileKeyStore(config.directory), Trust([]), client,
                  RenewalScheduler(config.policy, clock, random.Random(5)), ca.ca_certs,
                  credentials=lambda: Credentials("reg", "secret"),
                  state_path=config.directory / "state.json")
    return agent, ca, clock


def test_enroll_wait_renew(tmp_path: Path) -> None:
    agent, ca, clock = make_agent(tmp_path)
    assert agent.step().decision.action is Action.ENROLL
    waiting = agent.step()
    assert waiting.decision.action is Action.WAIT
    renew_at = agent.state.renew_at
    assert renew_at is not None
    assert START + timedelta(days=55) <= renew_at <= START + timedelta(days=65)
    clock.moment = renew_at
    result = agent.step()
    assert result.decision.action is Action.RENEW and result.error is None
    assert ca.calls == ["enroll", "renew"]
    assert agent.store.current().version == "0002"  # type: ignore[union-attr]


def test_old_versions_are_pruned_after_each_renewal(tmp_path: Path) -> None:
    """After six renewals the store keeps the current version and the two before it."""
    agent, _, clock = make_agent(tmp_path)
    agent.step()
    for _ in range(6):
        agent.step()
        assert agent.state.renew_at is not None
        clock.moment = agent.state.renew_at
        assert agent.step().decision.action is Action.RENEW
    store = agent.store
    assert isinstance(store, FileKeyStore)
    assert store.versions() == ["0005", "0006", "0007"]
    assert store.current().version == "0007"  # type: ignore[union-attr]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    agent, ca, _ = make_agent(tmp_path)
    agent.step()
    again, _, _ = make_agent(tmp_path, ca=ca)
    assert again.state.renew_at == agent.state.renew_at
    assert again.step().decision.action is Action.WAIT


def test_backoff_after_failures_then_success(tmp_path: Path) -> None:
    agent, ca, clock = make_agent(tmp_path)
    agent.step()
    assert agent.state.renew_at is not None
    clock.moment = agent.state.renew_at
    ca.failing = True
    failed = agent.step()
    assert failed.error == "server unreachable" and agent.state.failures == 1
    assert agent.step().decision.action is Action.WAIT  # backing off, no new request
    assert ca.calls == ["enroll", "renew"]
    assert agent.state.next_attempt is not None
    clock.moment = agent.state.next_attempt
    agent.step()
    assert agent.state.failures == 2
    first_wait = agent.state.next_attempt - clock.moment
    assert timedelta(minutes=1) <= first_wait <= timedelta(minutes=2)
    ca.failing = False
    clock.moment = agent.state.next_attempt
    assert agent.step().error is None
    assert agent.state.failures == 0 and agent.state.last_error is None


def test_offline_for_months_renews_within_grace(tmp_path: Path) -> None:
    agent, ca, clock = make_agent(tmp_path, grace=timedelta(days=180))
    agent.step()
    clock.moment = START + timedelta(days=90 + 100)
    result = agent.step()
    assert result.decision.action is Action.RENEW and "grace" in result.decision.reason
    assert ca.calls == ["enroll", "renew"]


def test_past_the_grace_enrolls_again(tmp_path: Path) -> None:
    agent, ca, clock = make_agent(tmp_path, grace=timedelta(days=30))
    agent.step()
    clock.moment = START + timedelta(days=90 + 31)
    assert agent.step().decision.action is Action.ENROLL
    assert ca.calls == ["enroll", "enroll"]


def test_ca_rollover_renews_at_once(tmp_path: Path) -> None:
    agent, ca, clock = make_agent(tmp_path)
    agent.step()
    old_issuer = agent.store.current().chain[1]  # type: ignore[union-attr]
    clock.moment = START + timedelta(days=10)
    assert agent.step().decision.action is Action.WAIT
    ca.roll_over()  # same CA name, new key and certificate
    clock.moment = START + timedelta(days=10, hours=2)  # the next check of cacerts
    result = agent.step()
    assert result.decision.action is Action.RENEW and result.decision.reason == "CA rollover"
    assert agent.store.current().chain[1] != old_issuer  # type: ignore[union-attr]
    clock.moment += timedelta(hours=2)
    assert agent.step().decision.action is Action.WAIT  # no rollover twice


def test_hooks_run_with_the_new_files_and_a_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "hook.txt"
    write = (sys.executable, "-c", "import os,sys; open(sys.argv[1],'w').write("
             "os.environ['IOTPKI_AGENT_CHAIN'])", str(marker))
    hang = (sys.executable, "-c", "import time; time.sleep(30)")
    agent, _, _ = make_agent(tmp_path, hooks=(Hook(write), Hook(hang, timeout=0.5)))
    identity = agent.enroll()
    assert marker.read_text() == str(identity.chain_file)
    assert [h.returncode for h in agent.last_hooks] == [0, None]
    assert "killed after 0.5 s" in agent.last_hooks[1].output




class ServerWindows:
    """A renewalInfo source (RFC 9773) the test sets: a window, none, or a failure."""

    def __init__(self) -> None:
        self.window: SuggestedWindow | None = None
        self.failing = False
        self.asked = 0

    def __call__(self, _identity: Identity) -> SuggestedWindow | None:
        self.asked += 1
        if self.failing:
            raise TransportError("server unreachable")
        return self.window


def test_rfc9773_server_window_retry_after_and_fallback(tmp_path: Path) -> None:
    """The server's window replaces the fraction rule; it is asked again only after its
    Retry-After (or `check_interval` after a failure, the window kept); it survives a
    restart; a server without renewalInfo leaves the fraction rule."""
    agent, ca, clock = make_agent(tmp_path)
    windows = ServerWindows()
    agent._renewal_info = windows
    agent.step()  # enroll
    fraction = agent.scheduler.renew_at(agent.store.current().certificate,  # type: ignore[union-attr]
                                        agent.state)
    assert agent.step().decision.action is Action.WAIT  # no renewalInfo: the fraction rule
    assert windows.asked == 1 and agent.state.window_start is None
    assert agent.step().decision.at == fraction
    assert windows.asked == 1  # again after check_interval only
    start, end = START + timedelta(days=20), START + timedelta(days=22)
    windows.window = SuggestedWindow(start, end, 21600)
    clock.moment = START + timedelta(hours=1, seconds=1)
    waiting = agent.step()
    assert windows.asked == 2 and start <= waiting.decision.at <= end
    clock.moment = START + timedelta(hours=7)
    agent.step()
    assert windows.asked == 2  # Retry-After (6 h) not passed
    windows.failing = True
    clock.moment = START + timedelta(hours=7, seconds=1)  # the Retry-After has passed
    assert agent.step().decision.at == waiting.decision.at  # the window is kept
    assert windows.asked == 3
    again, _, _ = make_agent(tmp_path, ca=ca)
    assert (again.state.window_start, again.state.window_end) == (start, end)
    clock.moment = waiting.decision.at
    windows.failing = False
    assert agent.step().decision.action is Action.RENEW
    assert ca.calls == ["enroll", "renew"]
