"""Real `iotpki serve` processes for the tests and the benchmarks: the one place that picks a
free port, spawns the server and waits for it, and the one movable test clock.

A server start costs seconds of CPU (the process imports the whole product, migrates the
schema, and the HTTPS listener is a second process that imports it again), so the protocol
suites share one server per test module (see `served_pki` and docs/testing.md); a test that
needs a server of its own (other options, other environment) starts one with
`ServerProcess`. Where the socket adds nothing (requests from our own encoders, no real
peer), `InProcessApp` serves the same application (`app.http_app`, `app.https_app`) in the
test process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.from_thread
import httpx

from iotpki.settings import Settings

PASSPHRASE = "test passphrase, not a secret"


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pythonpath() -> str:
    """This interpreter's import path, for child processes (the worktree's `src`)."""
    return os.pathsep.join(p for p in sys.path if p)


def serve_command(settings: Settings, http_port: int, https_port: int | None = None,
                  workers: int = 1, extra: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(settings.data_dir),
               "--public-url", settings.public_url]
    if settings.database_url:
        command += ["--database-url", settings.database_url]
    command += ["serve", "--http-port", str(http_port), "--workers", str(workers)]
    if https_port is not None:
        command += ["--https-port", str(https_port)]
    return [*command, *extra]


@dataclass
class ServerProcess:
    """`iotpki serve` in a child process on loopback ports; `start` returns once it answers."""

    settings: Settings
    http_port: int = field(default_factory=free_port)
    https_port: int | None = None
    workers: int = 1
    extra: Sequence[str] = ()
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def log(self) -> Path:
        return self.log_path or self.settings.data_dir.parent / f"server-{self.http_port}.log"

    def start(self, timeout: float = 240) -> ServerProcess:
        """Spawn and wait. Generous by default: on a loaded machine a start takes minutes."""
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self) -> None:
        command = serve_command(self.settings, self.http_port, self.https_port, self.workers,
                                self.extra)
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, env={**os.environ, "PYTHONPATH": pythonpath()},
                stdout=subprocess.DEVNULL, stderr=sink)

    def wait_ready(self, timeout: float = 240) -> None:
        """The plain-HTTP listener answers a request (any status: the application is built)
        and the HTTPS port, if any, accepts connections."""
        deadline = time.monotonic() + timeout
        waiting = [self._http_answers] + ([self._https_listens] if self.https_port else [])
        while waiting:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url} not ready in {timeout} s: {self.log.read_text()}")
            waiting = [check for check in waiting if not check()]
            if waiting:
                time.sleep(0.1)

    def _http_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an answer, even 404, means the application serves
        except OSError:
            return False

    def _https_listens(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", int(self.https_port or 0))) == 0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@contextmanager
def running(server: ServerProcess, timeout: float = 240) -> Iterator[ServerProcess]:
    server.start(timeout)
    try:
        yield server
    finally:
        server.stop()


class ManualClock:
    """A clock the test moves. Serves both the core's `Clock` protocol (`now()`) and the
    agent's callable clocks (`clock()`)."""

    def __init__(self, moment: datetime | None = None) -> None:
        self.moment = moment or datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


class InProcessApp:
    """A synchronous HTTP client on an ASGI application in this process (httpx's ASGI
    transport driven through an anyio portal): what a `ServerProcess` answers, without the
    process and the socket. The application's lifespan is not run (no background work)."""

    def __init__(self, app: object, base_url: str = "http://app.test") -> None:
        self.url = base_url
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                         base_url=base_url)

    def request(self, method: str, path: str, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        return self._portal.call(lambda: self._client.request(method, path, content=content,
                                                              headers=headers or {}))

    def stop(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)
