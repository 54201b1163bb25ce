"""`iotpki fleet simulate`: N virtual device agents against a running deployment.

It needs nothing but the deployment's HTTPS base URL and an API key of a registrar of the
organization: no data directory, no database. Each virtual device is a real `iotpki.agent`
(scheduler, EST or CMP client, key store: in memory for CMP, files for EST whose TLS client
authentication needs them). The run:

0. From the REST API (`fleet_api.py`): the organization's issuing CA (unless --ca), its
   operational domain (unless --domain), the root the devices pin, and for CMP the
   server's public base URL (from the CA certificate's caIssuers pointer, unless --cmp-url).
1. N one-time-secret registrations are created through the REST API
   (`POST /api/v1/registrations/bulk`, up to 500 a request, each with an Idempotency-Key:
   the RA's bulk import from a CRM).
2. Each device's agent takes one step: no certificate → enroll (ir / simpleenroll).
3. Compressed time: the device's *scheduler* clock jumps to the renewal time it drew for
   the new certificate (two thirds of the lifetime ± jitter); its next step renews
   (kur / simplereenroll). Only the scheduler's clock moves: the protocols keep the real
   time (CMP messageTime must be within minutes of the server's).

The report: successes, failures (grouped by error), latency percentiles of each
operation, wall time and devices/s (a device counts when it has enrolled and renewed).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from iotpki.agent.config import AgentConfig
from iotpki.agent.device import Agent
from iotpki.agent.factory import build_agent
from iotpki.agent.keystore import FileKeyStore, KeyStore, MemoryKeyStore
from iotpki.agent.renewal import Action, RenewalPolicy
from iotpki.agent.transport import HTTPTransport
from iotpki.cli.fleet_api import FleetAPI, FleetSetupError, Target
from iotpki.cli.output import JSON_OPTION, console, emit_json, fail
from iotpki.wire.names import parse_subject

app = typer.Typer(no_args_is_help=True, help="Fleet simulation: many virtual device agents.")
CMP_PATH = "/.well-known/cmp"


@dataclass(frozen=True)
class FleetOptions:
    devices: int
    url: str  # the deployment's HTTPS base URL: REST API and EST
    api_key: str
    protocol: str = "cmp"
    concurrency: int = 8
    authority: str | None = None  # None: the organization's only issuing CA
    profile: str = "operational"
    domain: str | None = None  # None: the organization's only domain, if any
    cmp_url: str | None = None  # None: <public URL>/.well-known/cmp
    tls_ca: Path | None = None  # verifies the API's TLS certificate; None: system trust
    key_type: str = "ec-p256"
    seed: int | None = None


@dataclass
class DeviceResult:
    enroll_seconds: float | None = None
    renew_seconds: float | None = None
    error: str | None = None


@dataclass
class FleetReport:
    devices: int
    protocol: str
    authority: str
    protocol_url: str
    succeeded: int
    failed: int
    errors: dict[str, int]
    wall_seconds: float
    registration_seconds: float
    devices_per_second: float
    operations_per_second: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)


def protocol_url(options: FleetOptions, target: Target) -> str:
    """Where the devices enroll: EST on the HTTPS base URL; CMP at --cmp-url, else on the
    plain-HTTP listener the deployment's public URL names."""
    if options.protocol == "est":
        return options.url.rstrip("/")
    if options.cmp_url:
        return options.cmp_url
    if target.public_url is None:
        raise FleetSetupError(f"the certificate of {target.authority} names no public URL "
                              "(a root CA): give --cmp-url")
    return target.public_url + CMP_PATH


class VirtualDevice:
    """One agent whose scheduler clock can jump ahead (compressed time)."""

    def __init__(self, options: FleetOptions, url: str, anchor: str, name: str,
                 registration: str, secret: str, transport: HTTPTransport, workdir: Path,
                 seed: int) -> None:
        self.offset = timedelta(0)
        config = AgentConfig(
            directory=workdir / name, protocol=options.protocol, url=url,
            trust_anchors=(anchor,), subject=parse_subject(f"CN={name}"),
            key_type=options.key_type,
            enrollment={"registration_id": registration, "secret": secret},
            policy=RenewalPolicy())
        store: KeyStore = (MemoryKeyStore() if options.protocol == "cmp"
                           else FileKeyStore(config.directory))
        self.agent: Agent = build_agent(
            config, rng=random.Random(seed), store=store, transport=transport,
            schedule_clock=lambda: datetime.now(UTC) + self.offset)

    def step(self, expected: Action) -> float:
        started = time.perf_counter()
        result = self.agent.step()
        elapsed = time.perf_counter() - started
        if result.error is not None:
            raise RuntimeError(f"{result.decision.action.value}: {result.error}")
        if result.decision.action is not expected:
            raise RuntimeError(f"expected {expected.value}, scheduler said {result.decision.reason}")
        return elapsed

    def skip_to_renewal(self) -> None:
        renew_at = self.agent.state.renew_at
        assert renew_at is not None
        self.offset = renew_at - datetime.now(UTC) + timedelta(seconds=1)


def run_device(options: FleetOptions, url: str, anchor: str, entry: tuple[str, str, str],
               shared: HTTPTransport | None, workdir: Path, seed: int) -> DeviceResult:
    result = DeviceResult()
    transport = shared or HTTPTransport()
    try:
        device = VirtualDevice(options, url, anchor, *entry, transport=transport,
                               workdir=workdir, seed=seed)
        result.enroll_seconds = device.step(Action.ENROLL)
        device.skip_to_renewal()
        result.renew_seconds = device.step(Action.RENEW)
    except Exception as exc:  # a device's failure is counted, never ends the run
        result.error = _error_kind(exc)
    finally:
        if shared is None:
            transport.close()
    return result


def simulate(options: FleetOptions, show_progress: bool = True) -> FleetReport:
    """Register the devices through the REST API, then enroll and renew each once."""
    api = FleetAPI(options.url, options.api_key, options.tls_ca)
    try:
        target = api.target(options.authority, options.domain)
        url = protocol_url(options, target)
        run = uuid.uuid4().hex[:8]
        names = [f"fleet-{run}-{i:06d}" for i in range(options.devices)]
        with Progress(console=console, disable=not show_progress, transient=False) as progress:
            started = time.perf_counter()
            registrations = api.register(target, options.profile, names)
            registration_seconds = time.perf_counter() - started
            entries = [(name, *made) for name, made in zip(names, registrations, strict=True)]
            task = progress.add_task(f"enroll + renew ({options.protocol})", total=len(entries))
            results, wall = _run_devices(options, url, target.anchor, entries,
                                         lambda: progress.advance(task))
    finally:
        api.close()
    return _report(options, target.authority, url, results, wall, registration_seconds)


def _run_devices(options: FleetOptions, url: str, anchor: str,
                 entries: list[tuple[str, str, str]],
                 advance: Callable[[], None]) -> tuple[list[DeviceResult], float]:
    rng = random.Random(options.seed)
    seeds = [rng.randrange(2**32) for _ in entries]
    shared = HTTPTransport() if options.protocol == "cmp" else None
    results: list[DeviceResult] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="iotpki-fleet-") as directory:

        def one(item: tuple[int, tuple[str, str, str]]) -> None:
            outcome = run_device(options, url, anchor, item[1], shared, Path(directory),
                                 seeds[item[0]])
            with lock:
                results.append(outcome)
            advance()

        started = time.perf_counter()
        with ThreadPoolExecutor(options.concurrency) as pool:
            list(pool.map(one, enumerate(entries)))
        wall = time.perf_counter() - started
    if shared is not None:
        shared.close()
    return results, wall


def _report(options: FleetOptions, authority: str, url: str, results: list[DeviceResult],
            wall: float, registration_seconds: float) -> FleetReport:
    good = [r for r in results if r.error is None]
    errors = Counter(r.error for r in results if r.error is not None)
    operations = sum((r.enroll_seconds is not None) + (r.renew_seconds is not None) for r in good)
    latency = {name: _percentiles([getattr(r, f"{name}_seconds") for r in good])
               for name in ("enroll", "renew")}
    return FleetReport(
        devices=options.devices, protocol=options.protocol, authority=authority,
        protocol_url=url, succeeded=len(good),
        failed=len(results) - len(good), errors=dict(errors.most_common(10)),
        wall_seconds=round(wall, 2), registration_seconds=round(registration_seconds, 2),
        devices_per_second=round(len(good) / wall, 2) if wall else 0.0,
        operations_per_second=round(operations / wall, 2) if wall else 0.0, latency_ms=latency)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(v * 1000 for v in values)
    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)
    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1),
            "mean": round(statistics.fmean(ordered), 1)}


def _error_kind(exc: Exception) -> str:
    text = str(exc)
    return (text[:160] + "…") if len(text) > 160 else text


@app.command("simulate")
def simulate_command(
    devices: int = typer.Option(100, "--devices", min=1, help="Number of virtual devices."),
    url: str = typer.Option(..., "--url", help="The deployment's HTTPS base URL (REST API and "
                                                 "EST), e.g. https://pki.example:8443."),
    api_key: str = typer.Option(..., "--api-key", envvar="IOTPKI_API_KEY",
                                help="API key of a registrar of the organization."),
    protocol: str = typer.Option("cmp", "--protocol", help="cmp or est."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Devices in flight."),
    authority: str = typer.Option(None, "--ca", help="Issuing CA (default: the "
                                  "organization's only one)."),
    profile: str = typer.Option("operational", "--profile"),
    domain: str = typer.Option(None, "--domain", help="Operational domain (default: the "
                               "organization's only one)."),
    cmp_url: str = typer.Option(None, "--cmp-url", help="CMP URL (default: the public URL "
                                "the CA certificate names + /.well-known/cmp)."),
    tls_ca: Path = typer.Option(None, "--tls-ca", exists=True, dir_okay=False,
                                help="CA certificates (PEM) that verify the API's TLS "
                                     "certificate (default: the system's)."),
    seed: int = typer.Option(None, "--seed", help="Seed of the devices' jitter."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register N devices through the REST API (one-time secrets), then have each enroll and
    renew once against the deployment, with compressed time; report successes, failures,
    latencies and devices/s. Exit code 1 if any device failed."""
    if protocol not in ("cmp", "est"):
        fail("--protocol is cmp or est", 2)
    options = FleetOptions(devices, url, api_key, protocol, concurrency, authority, profile,
                           domain, cmp_url, tls_ca, seed=seed)
    try:
        report = simulate(options, show_progress=not as_json)
    except FleetSetupError as exc:
        fail(str(exc))
    fields: dict[str, Any] = dict(report.__dict__)
    if as_json:
        emit_json(fields)
    else:
        console.print(f"[bold]{report.succeeded}[/] of {report.devices} devices enrolled and "
                      f"renewed over {protocol.upper()} ({report.protocol_url}, "
                      f"{report.authority}), [bold]{report.failed}[/] failed, in "
                      f"{report.wall_seconds} s: [bold]{report.devices_per_second}[/] devices/s "
                      f"({report.operations_per_second} certificates/s); registrations "
                      f"{report.registration_seconds} s", highlight=False)
        for name, values in report.latency_ms.items():
            console.print(f"  {name} latency ms: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        for error, count in report.errors.items():
            console.print(f"  [red]{count}x[/] {error}", highlight=False)
    if report.failed:
        raise typer.Exit(1)
