"""EST renewals per second over TLS (RFC 7030 §4.2.2 simplereenroll).

    python bench/est.py [--workers 2] [--clients 2] [--connections 8] [--duration 10]

Starts `iotpki serve --https-port` (SQLite in a temporary data directory, or
--database-url) with --workers processes, then --clients load-generator processes, each
driving --connections concurrent TLS connections with asyncio (raw HTTP/1.1, no HTTP
library on the hot path). Before each run a fresh population of --devices devices is issued
in process, each with its current operational certificate and one pre-built renewal CSR
(new key, same subject and SAN): only the newest certificate of an identity renews, so a
device renews once, on a connection of its own that presents its certificate as TLS client
certificate. Every request goes the whole way: TLS handshake with client certificate →
current-certificate method (store lookup: issued here, good, not expired, newest of its
lineage; same subject and SANs) → CSR verify → policy → sign → store + audit + event in one
transaction → certs-only PKCS#7 answer.

Reports renewals/s (median of --repeat runs), p50/p99 latency, the server's CPU time per
request (process tree user + system, bench/cpu.py) and the ratio to the in-process issuance
rate (bench/issuance.py, one transaction per certificate).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import ServerProcess, free_port

from bench.cpu import load_average
from bench.issuance import make_csrs as make_issuance_csrs
from bench.issuance import rate, single
from bench.load import run_load
from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.wire.est import encode_base64_body
from iotpki.wire.keys import generate_private_key

CA = "operatorco-operations"
DOMAIN = "urn:iotpki:domain:building-42.operator.example"
SUBJECT = "bench-client"


Device = tuple[Path, bytes]  # (PEM file with its certificate and key, its renewal request)


def population(pki: object, directory: Path, prefix: str, count: int, port: int) -> list[Device]:
    """`count` devices, each with a current operational certificate (issued in process, in
    batches) and one pre-built simplereenroll request for a new key. Each device renews
    once: only the newest certificate of an identity renews (RFC 7030 §4.2.2 lineage)."""
    directory.mkdir(parents=True, exist_ok=True)
    devices: list[Device] = []
    for start in range(0, count, 200):
        made = []
        for index in range(start, min(count, start + 200)):
            key = generate_private_key("ec-p256")
            made.append((key, _csr(key, f"{SUBJECT}-{prefix}-{index}")))
        outcomes = pki.issuance.issue_many([  # type: ignore[attr-defined]
            IssuanceRequest(CA, "operational", csr, "bench") for _, csr in made])
        for (key, _), outcome in zip(made, outcomes, strict=True):
            assert isinstance(outcome, Issued), outcome
            path = directory / f"{outcome.record.serial_hex}.pem"
            path.write_bytes(outcome.certificate.public_bytes(serialization.Encoding.PEM)
                             + key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
            renewal = _csr(generate_private_key("ec-p256"),
                           outcome.certificate.subject.rfc4514_string().removeprefix("CN="))
            devices.append((path, request_for(port, encode_base64_body(renewal))))
    return devices


def _csr(key: object, name: str) -> bytes:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(DOMAIN)]),
                           False)
            .sign(key, hashes.SHA256())  # type: ignore[arg-type]
            .public_bytes(serialization.Encoding.DER))


def root_file(pki: object, directory: Path) -> Path:
    root = directory / "root.pem"
    authority = pki.authorities.get(CA)  # type: ignore[attr-defined]
    root.write_bytes(authority.full_chain[-1].public_bytes(serialization.Encoding.PEM))
    return root


# -- load generator (separate processes) ---------------------------------------------------------

def request_for(port: int, body: bytes) -> bytes:
    return (f"POST /.well-known/est/simplereenroll HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/pkcs10\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def connection(port: int, root: str, devices: list[Device], until: float,
                     latencies: list[float], statuses: dict[int, int],
                     answers: list[tuple[int, float]] | None = None) -> None:
    """One device after another: a TLS connection with the device's certificate, its
    renewal, the answer (a device renews once, so one request per connection)."""
    for path, request in devices:
        if time.monotonic() >= until:
            return
        context = ssl.create_default_context(cafile=root)
        context.load_cert_chain(path)
        sent = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                       server_hostname="127.0.0.1")
        writer.write(request)
        status, length = await read_head(reader)
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - sent)
        statuses[status] = statuses.get(status, 0) + 1
        if answers is not None:
            answers.append((status, latencies[-1]))
        writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                  if k.lower() == "content-length")
    return int(lines[0].split()[1]), length


def generate_load(port: int, root: str, connections: int, work: Sequence[tuple[bool, Device]],
                  duration: float) -> tuple[float, list[tuple[int, float]], float, int]:
    """One load process (bench/load.py): its warm-up devices (marked True) renew first,
    unmeasured; then its other devices for `duration` seconds. The answers are (status,
    latency) pairs; the warm-up's count is reported apart (the server's CPU covers it)."""
    warm_devices = [device for warm, device in work if warm]
    devices = [device for warm, device in work if not warm]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    measured = [0.0, 0.0]  # CPU seconds of this load generator, wall seconds
    warm: dict[int, int] = {}
    answers: list[tuple[int, float]] = []

    async def run() -> None:
        await asyncio.gather(*(connection(port, root, warm_devices[i::connections],
                                          time.monotonic() + 60, [], warm)
                               for i in range(connections)))
        started, cpu = time.monotonic(), time.process_time()
        until = started + duration
        await asyncio.gather(*(connection(port, root, devices[i::connections], until,
                                          latencies, statuses, answers)
                               for i in range(connections)))
        measured[:] = [time.process_time() - cpu, time.monotonic() - started]
    asyncio.run(run())
    return measured[1], answers, measured[0], sum(warm.values())


# -- orchestration -------------------------------------------------------------------------------

def start_server(data_dir: Path, database_url: str | None, workers: int) -> tuple[
        ServerProcess, int]:
    settings = Settings(data_dir, database_url, public_url="http://127.0.0.1:8080")
    # a loaded machine starts 2 listeners x N workers slowly
    server = ServerProcess(settings, free_port(), free_port(), workers=workers).start(240)
    if workers > 1:
        time.sleep(10.0)  # every worker up (the first one answering is not all)
    return server, int(server.https_port or 0)


Run = tuple[float, list[float], dict[int, int], float, float, float]


def one_run(args: argparse.Namespace, server: ServerProcess, root: Path,
            warm: list[Device], devices: list[Device]) -> Run:
    """(enrollments/s, latencies, statuses, load-generator cores, server CPU ms per
    answer, load average). Server CPU covers warm-up and measurement alike, divided by every
    answer of both."""
    assert server.process is not None
    # Each load process gets its round-robin share of both (bench/load.py).
    work = [(True, d) for d in warm] + [(False, d) for d in devices]
    loader = partial(generate_load, int(server.https_port or 0), str(root), args.connections)
    measured = run_load(server.process.pid, loader, work, args.clients, args.duration,
                        timeout=300)
    statuses: dict[int, int] = {}
    for status, _ in measured.answers:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = [latency for _, latency in measured.answers]
    return (measured.rate(statuses.get(200, 0)), latencies, statuses, measured.load_cores,
            measured.server_ms_per_answer, load_average())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=8, help="per load generator")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=200, help="renewals before each run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devices", type=int, default=8000,
                        help="devices per run (each renews once; a run ends early if used up)")
    parser.add_argument("--in-process", type=int, default=1000,
                        help="certificates of the in-process rate (the ratio's denominator)")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        settings = Settings(data_dir, args.database_url, public_url="http://127.0.0.1:8080")
        pki = build_pki(settings)
        create_demo_hierarchy(pki)
        root = root_file(pki, Path(tmp))
        in_process = rate(single(pki, make_issuance_csrs(args.in_process)), 3)
        pki.close()
        process, port = start_server(data_dir, args.database_url, args.workers)
        try:
            runs = []
            for number in range(args.repeat):
                pki = build_pki(settings, migrate=False)
                try:
                    warm = population(pki, Path(tmp) / "devices", f"w{number}", args.warmup,
                                      port)
                    devices = population(pki, Path(tmp) / "devices", f"r{number}",
                                         args.devices, port)
                finally:
                    pki.close()
                runs.append(one_run(args, process, root, warm, devices))
                if runs[-1][2].get(200, 0) != sum(runs[-1][2].values()):
                    raise SystemExit(f"not every renewal succeeded: {runs[-1][2]}")
                if runs[-1][2].get(200, 0) >= args.devices:
                    print("warning: the run used every device before its end; "
                          "raise --devices", file=sys.stderr)
        finally:
            process.stop()
    report(args, runs, in_process)


def report(args: argparse.Namespace, runs: list[Run], in_process: float) -> None:
    rates = sorted(r[0] for r in runs)
    median = statistics.median(rates)
    latencies = sorted(runs[len(runs) // 2][1]) or [0.0]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"# EST simplereenroll over TLS, one renewal per device and connection; "
          f"{args.workers} server workers, "
          f"{args.clients}x{args.connections} connections, {args.duration:.0f} s runs")
    print(f"# {machine}")
    print(f"enrollments/s (median of {args.repeat}): {median:.0f}   runs: "
          + ", ".join(f"{r:.0f}" for r in rates))
    print(f"latency p50 {1000 * latencies[len(latencies) // 2]:.1f} ms, "
          f"p99 {1000 * latencies[int(len(latencies) * 0.99)]:.1f} ms")
    print(f"statuses: {runs[-1][2]}")
    print("load generator CPU (cores busy, per run): "
          + ", ".join(f"{r[3]:.2f}" for r in runs))
    print(f"server CPU ms/request (median of {args.repeat}): "
          f"{statistics.median(r[4] for r in runs):.2f}   runs: "
          + ", ".join(f"{r[4]:.2f}" for r in runs))
    print("load average (1 min) at the end of each run: "
          + ", ".join(f"{r[5]:.1f}" for r in runs))
    print(f"in-process issuance (1 per transaction): {in_process:.0f}/s; "
          f"EST/in-process = {median / in_process:.2f}")


if __name__ == "__main__":
    main()
