"""Benchmark: CPU of one CMP cr (RFC 9483 §4.1.2, signature-protected, implicitConfirm) in
process, for a machine shared with others where rates and wall times say little.

Method: `prepare` makes the demo PKI in `DIR` and a population of devices, each with a
current operational certificate (issued in process), their keys and chains saved beside it.
`run` copies that state to a fresh directory, opens the PKI as an `iotpki serve` worker does
(group commit), builds one cr per device (a new P-256 key and POP each, signed by the
device's current certificate, `wire.cmp.requests`), then posts the first `--post` of them
through the plain-HTTP ASGI application (`app.http_app`, httpx's ASGI transport) one after
another, and checks every answer (cp, PKIStatus accepted). It prints the process's CPU time
per request. `--profile FILE` saves a cProfile of the loop instead, the requests handed to the
CMP server in this thread (`protocols.cmp.routes.answer_bytes`, without the HTTP layer: the
ASGI application answers from a worker thread, which cProfile does not see).

Instructions per request, independent of the load: run under callgrind twice with the same
`--devices` (the same requests are built) and two `--post` counts; the difference of the two
totals divided by the difference of the counts is what the extra requests cost:

    python bench/cmp_cpu.py prepare DIR [--devices 300]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/cmp_cpu.py run DIR --post 20
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/cmp_cpu.py run DIR --post 220
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, bench.*

import argparse
import cProfile
import os
import shutil
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.servers import InProcessApp

from bench.cmp import accepted, build_requests, population, prepare
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


def command_prepare(directory: Path, devices: int) -> None:
    settings = Settings(directory / "data", public_url=PUBLIC_URL)
    prepare(settings)
    save_devices(directory, population(settings, "cpu", devices))


def command_run(directory: Path, devices: int, post: int, profile: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(directory / "data", Path(tmp) / "data")
        pki = build_pki(Settings(Path(tmp) / "data", public_url=PUBLIC_URL), migrate=False,
                        group_commit=True)
        app = InProcessApp(http_app(pki, background=False), PUBLIC_URL)
        try:
            requests = build_requests(load_devices(directory, devices))[:post]
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
        finally:
            app.stop()
            pki.close()
    good = sum(1 for answer in answers if accepted(answer))
    print(f"{good} accepted of {len(answers)}; process CPU {spent / max(len(answers), 1) * 1000:.2f}"
          f" ms/request; load average {os.getloadavg()[0]:.1f}", flush=True)
    if good != len(answers):
        raise SystemExit(f"{len(answers) - good} answers were not an accepted cp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("prepare", "run"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--post", type=int, default=300, help="requests posted (run)")
    parser.add_argument("--profile", type=Path, help="cProfile output of the posting loop (run)")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    if args.command == "prepare":
        command_prepare(args.directory, args.devices)
    else:
        command_run(args.directory, args.devices, args.post, args.profile)


if __name__ == "__main__":
    main()
