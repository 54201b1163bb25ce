"""Benchmark: CPU of one CMP cr (RFC 9483 §4.1.2, signature-protected, implicitConfirm) in
process, for a machine shared with others where rates and wall times say little.

Method: `prepare` makes the demo PKI in `DIR` and a population of devices, each with a
current operational certificate (issued in process), their keys and chains saved beside it.
`run` copies that state to a fresh directory, opens the PKI as an `iotpki serve` worker does
(group commit), builds one cr per device (a new P-256 key and POP each, signed by the
device's current certificate, `wire.cmp.requests`), then posts the first `--post` of them
through the plain-HTTP ASGI application (`app.http_app`, httpx's ASGI transport) one after
another, and checks every answer (cp, PKIStatus accepted). It prints the process's CPU time
per request (on PostgreSQL also the CPU of the server processes serving the run's
database). `--profile FILE` saves a cProfile of the loop instead, the requests handed to the
CMP server in this thread (`protocols.cmp.routes.answer_bytes`, without the HTTP layer: the
ASGI application answers from a worker thread, which cProfile does not see).

Instructions per request, independent of the load: run under callgrind twice with the same
`--devices` (the same requests are built) and two `--post` counts; the difference of the two
totals divided by the difference of the counts is what the extra requests cost:

    python bench/cmp_cpu.py prepare DIR [--devices 300]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/cmp_cpu.py run DIR --post 20
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/cmp_cpu.py run DIR --post 220

On PostgreSQL, `prepare --database-url postgresql+psycopg://…/NAME` creates database NAME
(it must not exist) as the state's template; each `run` copies it (`CREATE DATABASE …
TEMPLATE NAME`), posts against the copy and drops the copy. `--round-trips` counts what the
process sends to PostgreSQL per request, by statement kind (libpq calls through psycopg's
pure-Python binding, which costs CPU: take the CPU figure from a run without it).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, bench.*

import argparse
import contextlib
import cProfile
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine, make_url, text
from tests.servers import InProcessApp

from bench.cmp import accepted, build_requests, population, prepare
from bench.cpu import processes_cpu
from iotpki.app import build_pki, http_app
from iotpki.protocols.cmp.routes import answer_bytes
from iotpki.settings import Settings

PUBLIC_URL = "http://cmp.test"
PASSPHRASE = "bench passphrase, not a secret"


def save_devices(directory: Path, devices: list[tuple[object, tuple[x509.Certificate, ...]]]) -> None:
    (directory / "devices").mkdir()
    for index, (key, chain) in enumerate(devices):
        (directory / "devices" / f"{index}.key").write_bytes(key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (directory / "devices" / f"{index}.pem").write_bytes(b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in chain))


def load_devices(directory: Path, count: int) -> list[tuple[object, tuple[x509.Certificate, ...]]]:
    return [(serialization.load_pem_private_key((directory / "devices" / f"{i}.key").read_bytes(),
                                                None),
             tuple(x509.load_pem_x509_certificates((directory / "devices" / f"{i}.pem").read_bytes())))
            for i in range(count)]


def _administer(url: str, statement: str) -> None:
    """CREATE/DROP DATABASE, which cannot run in a transaction: from the server's
    maintenance database."""
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def command_prepare(directory: Path, devices: int, database_url: str | None) -> None:
    if database_url is not None:
        # Created here, never dropped: a database that exists already is someone's.
        _administer(database_url, f"CREATE DATABASE {_quoted(str(make_url(database_url).database))}")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "database-url").write_text(database_url)
    settings = Settings(directory / "data", database_url, public_url=PUBLIC_URL)
    prepare(settings)
    save_devices(directory, population(settings, "cpu", devices))


@contextlib.contextmanager
def database_copy(template_url: str | None) -> Iterator[str | None]:
    """A fresh copy of the prepared PostgreSQL database for one run (None: SQLite, copied
    with the data directory)."""
    if template_url is None:
        yield None
        return
    template = make_url(template_url)
    name = f"{template.database}_run_{os.getpid()}"
    _administer(template_url, f"CREATE DATABASE {_quoted(name)} TEMPLATE "
                              f"{_quoted(str(template.database))}")
    try:
        yield template.set(database=name).render_as_string(hide_password=False)
    finally:
        _administer(template_url, f"DROP DATABASE IF EXISTS {_quoted(name)}")


class BackendCPU:
    """CPU time of the PostgreSQL server processes serving one database (from /proc: the
    server runs on this machine); processes that started meanwhile count whole."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._start: dict[int, float] = {}

    def _pids(self) -> list[int]:
        engine = create_engine(make_url(self._url).set(database="postgres"))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                    {"name": make_url(self._url).database}).scalars())
        finally:
            engine.dispose()

    def start(self) -> None:
        self._start = processes_cpu(self._pids())

    def spent(self) -> float:
        return sum(cpu - self._start.get(pid, 0.0)
                   for pid, cpu in processes_cpu(self._pids()).items())


class RoundTrips:
    """What psycopg hands libpq, by statement: each call is one round trip outside pipeline
    mode (a statement psycopg prepares costs one more, once per connection); in pipeline
    mode the statements are queued and each sync is the round trip. Needs psycopg's
    pure-Python binding, chosen before psycopg is first imported."""

    _PREPARED = ("exec_prepared", "send_query_prepared")
    _SENDS = ("exec_", "exec_params", "send_query", "send_query_params", "send_prepare",
              *_PREPARED)

    def __init__(self) -> None:
        if "psycopg" in sys.modules:
            raise SystemExit("--round-trips: psycopg was imported before its binding was chosen")
        os.environ["PSYCOPG_IMPL"] = "python"
        from psycopg.pq import pq_ctypes

        self.statements: Counter[str] = Counter()
        self._prepared: dict[tuple[int, bytes], str] = {}  # (connection, name): statement
        self.counting = False
        self.pipelined = 0  # statements queued in pipeline mode
        for name in self._SENDS:
            setattr(pq_ctypes.PGconn, name, self._counted(getattr(pq_ctypes.PGconn, name), name))
        sync = pq_ctypes.PGconn.pipeline_sync

        def counted_sync(pgconn: Any) -> Any:
            if self.counting:
                self.statements["(pipeline sync)"] += 1
            return sync(pgconn)

        pq_ctypes.PGconn.pipeline_sync = counted_sync  # type: ignore[method-assign]

    def _counted(self, send: Any, call: str) -> Any:
        def counted(pgconn: Any, *args: Any, **kwargs: Any) -> Any:
            if call in self._PREPARED:
                statement = self._prepared.get((id(pgconn), bytes(args[0])), "?")
            else:
                sql = bytes(args[1] if call == "send_prepare" else args[0])
                statement = re.sub(r"sa_savepoint_\d+", "sa_savepoint_N",
                                   " ".join(sql.decode(errors="replace").split()))
                if call == "send_prepare":
                    self._prepared[(id(pgconn), bytes(args[0]))] = statement
                    statement = f"PREPARE {statement}"
            if self.counting:
                self.statements[statement] += 1
                self.pipelined += bool(pgconn.pipeline_status)
            return send(pgconn, *args, **kwargs)

        return counted

    def report(self, requests: int) -> None:
        per = max(requests, 1)
        kinds: Counter[str] = Counter()
        for statement, count in self.statements.items():
            kinds[statement.split(" ", 1)[0].upper()] += count
        print(f"round trips per request: {(sum(kinds.values()) - self.pipelined) / per:.2f}; "
              f"libpq calls per request: {sum(kinds.values()) / per:.2f} ("
              + ", ".join(f"{kind} {count / per:.2f}" for kind, count in kinds.most_common())
              + ")")
        for statement, count in self.statements.most_common():
            if count / per >= 0.05:
                print(f"  {count / per:6.2f}  {statement[:140]}")


def command_run(directory: Path, devices: int, post: int, profile: Path | None,
                database_url: str | None, round_trips: RoundTrips | None) -> None:
    if database_url is None and (directory / "database-url").exists():
        database_url = (directory / "database-url").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp, database_copy(database_url) as url:
        shutil.copytree(directory / "data", Path(tmp) / "data")
        pki = build_pki(Settings(Path(tmp) / "data", url, public_url=PUBLIC_URL), migrate=False,
                        group_commit=True)
        app = InProcessApp(http_app(pki, background=False), PUBLIC_URL)
        try:
            requests = build_requests(load_devices(directory, devices))[:post]
            if round_trips is not None:
                round_trips.counting = True
            backends = BackendCPU(url) if url is not None else None
            if backends is not None:
                backends.start()
            started = time.process_time()
            if profile is None:
                answers = [app.request("POST", "/.well-known/cmp", body,
                                       {"Content-Type": "application/pkixcmp"}).content
                           for body in requests]
            else:
                profiler = cProfile.Profile()
                answers = profiler.runcall(lambda: [answer_bytes(pki.cmp, "", body)
                                                    for body in requests])
                profiler.dump_stats(profile)
            spent = time.process_time() - started
            server = backends.spent() if backends is not None else None
            if round_trips is not None:
                round_trips.counting = False
        finally:
            app.stop()
            pki.close()
    good = sum(1 for answer in answers if accepted(answer))
    per = max(len(answers), 1)
    backend = (f"; PostgreSQL backends' CPU {server / per * 1000:.2f} ms/request"
               if server is not None else "")
    print(f"{good} accepted of {len(answers)}; process CPU {spent / per * 1000:.2f}"
          f" ms/request{backend}; load average {os.getloadavg()[0]:.1f}", flush=True)
    if round_trips is not None:
        round_trips.report(len(answers))
    if good != len(answers):
        raise SystemExit(f"{len(answers) - good} answers were not an accepted cp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("prepare", "run"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--post", type=int, default=300, help="requests posted (run)")
    parser.add_argument("--profile", type=Path, help="cProfile output of the posting loop (run)")
    parser.add_argument("--database-url",
                        help="PostgreSQL: the database prepare creates (run: the one prepared)")
    parser.add_argument("--round-trips", action="store_true",
                        help="count what is sent to PostgreSQL per request (run)")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    if args.command == "prepare":
        command_prepare(args.directory, args.devices, args.database_url)
    else:
        command_run(args.directory, args.devices, args.post, args.profile, args.database_url,
                    RoundTrips() if args.round_trips else None)


if __name__ == "__main__":
    main()
