"""The fuzz harness: a demo PKI in a temporary directory, both listeners' ASGI applications
driven in process (no socket), byte-level mutations of valid seeds, and the checks.

Every input is one HTTP request through the real application: routing, the adapter's
decoders, the core, the store. The run counts what a client would see and what the log
shows: 5xx answers, exceptions escaping the application (a 500 from the server), OCSP
internalError answers, and log records that carry a traceback. All must be 0. It reports the
process RSS before and after the run.
"""

from __future__ import annotations

import collections
import logging
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from iotpki.app import PKI, build_pki, http_app, https_app
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.settings import Settings

ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@dataclass
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    query: bytes = b""
    client: str = "198.51.100.1"


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


@dataclass
class Report:
    target: str
    inputs: int = 0
    server_errors: int = 0  # 5xx answers and exceptions escaping the application
    tracebacks: int = 0  # log records with exc_info
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: list[Request] = field(default_factory=list)
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        top = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (f"{self.target}: {self.inputs} inputs in {self.seconds:.0f} s; 5xx "
                f"{self.server_errors}, tracebacks {self.tracebacks}; RSS "
                f"{self.rss_before_kib // 1024} → {self.rss_after_kib // 1024} MiB; "
                f"statuses {top}")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class TracebackCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.last: str = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count += 1
            self.last = self.format(record)


@contextmanager
def demo_pki() -> Iterator[PKI]:
    """A fresh demo hierarchy (three organizations) on SQLite in a temporary directory."""
    import os
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "fuzz passphrase, not a secret")
    with tempfile.TemporaryDirectory(prefix="iotpki-fuzz-") as directory:
        pki = build_pki(Settings(data_dir=Path(directory) / "data",
                                 public_url="http://127.0.0.1:8080"))
        try:
            create_demo_hierarchy(pki)
            yield pki
        finally:
            pki.close()


def applications(pki: PKI) -> tuple[ASGI, ASGI]:
    """(HTTPS application: EST and REST, plain-HTTP application: OCSP, CRL, CMP)."""
    return (https_app(pki),
            http_app(pki, background=False))


async def call(app: ASGI, request: Request) -> Answer:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": request.method, "scheme": "https", "path": request.path,
             "raw_path": request.path.encode("utf-8", "surrogateescape"),
             "query_string": request.query, "root_path": "",
             "headers": request.headers, "client": (request.client, 40000),
             "server": ("iotpki.test", 443)}
    sent_body = False
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if sent_body:
            return {"type": "http.disconnect"}
        sent_body = True
        return {"type": "http.request", "body": request.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(scope, receive, send)
    start = next(m for m in out if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    return Answer(start["status"], dict(start.get("headers", [])), body)


# -- mutations ------------------------------------------------------------------------------

def mutate(data: bytes, rng: random.Random, others: list[bytes] | None = None) -> bytes:
    """1 to 4 byte-level mutations: bit flips, random bytes, inserted/deleted runs,
    truncation, DER length octets, duplicated runs, splices with another seed."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif kind == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 3 and out:
            del out[at:at + rng.randint(1, 32)]
        elif kind == 4:
            del out[at:]
        elif kind == 5 and out:  # a length octet: 0x80-0x84, or 0xff
            out[min(at, len(out) - 1)] = rng.choice([0x80, 0x81, 0x82, 0x83, 0x84, 0xFF, 0x00])
        elif kind == 6 and out:
            run = out[at:at + rng.randint(1, 64)]
            out[at:at] = run * rng.randint(1, 8)
        elif kind == 7 and others:
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            out[at:] = other[cut:]
        else:
            out[at:at] = rng.choice([b"\x00", b"\xff" * 8, b"\x30\x80", b"\x02\x09\x80" + b"\x00" * 8,
                                     b"%", b"\r\n", "é".encode(), b"\x30\x84\xff\xff\xff\xff"])
    return bytes(out)


def run(target: str, app: ASGI, inputs: Iterator[Request], count: int,
        judge: Callable[[Request, Answer], bool] | None = None, progress: int = 0) -> Report:
    """Send `count` requests; `judge` flags answers that are faults without being 5xx."""
    report = Report(target, rss_before_kib=rss_kib())
    counter = TracebackCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    started = time.monotonic()

    async def main() -> None:
        for request in _take(inputs, count):
            report.inputs += 1
            try:
                answer = await call(app, request)
            except Exception:  # escaped the application: the server would answer 500
                logging.getLogger("fuzz").exception("%s %s escaped", request.method, request.path)
                report.server_errors += 1
                _keep(report, request)
                continue
            report.statuses[answer.status] += 1
            if progress and report.inputs % progress == 0:
                print(f"{target}: {report.inputs} inputs, 5xx {report.server_errors}, "
                      f"tracebacks {counter.count}", flush=True)
            if answer.status >= 500 or (judge is not None and judge(request, answer)):
                report.server_errors += 1
                _keep(report, request)

    try:
        anyio.run(main)
    finally:
        root.removeHandler(counter)
    report.tracebacks = counter.count
    report.seconds = time.monotonic() - started
    report.rss_after_kib = rss_kib()
    if counter.last:
        print(counter.last)
    return report


def _take(inputs: Iterator[Request], count: int) -> Iterator[Request]:
    for _, request in zip(range(count), inputs, strict=False):
        yield request


def _keep(report: Report, request: Request) -> None:
    if len(report.failures) < 20:
        report.failures.append(request)
