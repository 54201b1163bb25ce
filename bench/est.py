"""EST enrollments per second over TLS (RFC 7030 §4.2.2 simplereenroll, keep-alive).

    python bench/est.py [--workers 2] [--clients 2] [--connections 8] [--duration 10]

Starts `iotpki serve --https-port` (SQLite in a temporary data directory, or
--database-url) with --workers processes, then --clients load-generator processes, each
driving --connections keep-alive TLS connections with asyncio (raw HTTP/1.1, no HTTP
library on the hot path). Every connection presents the same operational certificate as
TLS client certificate and sends pre-built CSRs with its subject and SAN, so every request
goes the whole way: TLS client-certificate identity → current-certificate method (store
lookup: issued here, good, not expired; same subject and SANs) → CSR verify → policy →
sign → store + audit + event in one transaction → certs-only PKCS#7 answer.

Reports enrollments/s (median of --repeat runs), p50/p99 latency, and the ratio to the
in-process issuance rate (bench/issuance.py, one transaction per certificate).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import ServerProcess, free_port

from bench.issuance import make_csrs as make_issuance_csrs
from bench.issuance import rate, single
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


def renewal_csr() -> bytes:
    key = generate_private_key("ec-p256")
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, SUBJECT)]))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(DOMAIN)]),
                           False)
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def client_files(pki_dir: Path, pki: object) -> tuple[Path, Path, Path]:
    key = generate_private_key("ec-p256")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, SUBJECT)]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(DOMAIN)]),
                          False).sign(key, hashes.SHA256()))
    outcome = pki.issuance.issue(IssuanceRequest(  # type: ignore[attr-defined]
        CA, "operational", csr.public_bytes(serialization.Encoding.DER), "bench"))
    assert isinstance(outcome, Issued), outcome
    cert, key_path, root = pki_dir / "client.pem", pki_dir / "client.key", pki_dir / "root.pem"
    cert.write_bytes(outcome.certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    root.write_bytes(outcome.chain[-1].public_bytes(serialization.Encoding.PEM))
    return cert, key_path, root


# -- load generator (separate processes) ---------------------------------------------------------

def requests_for(port: int, bodies: list[bytes]) -> list[bytes]:
    head = (f"POST /.well-known/est/simplereenroll HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/pkcs10\r\n")
    return [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]


async def connection(port: int, context: ssl.SSLContext, requests: list[bytes], start: int,
                     until: float, latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                   server_hostname="127.0.0.1")
    index = start
    while time.monotonic() < until:
        sent = time.perf_counter()
        writer.write(requests[index % len(requests)])
        status, length = await read_head(reader)
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - sent)
        statuses[status] = statuses.get(status, 0) + 1
        index += 1
    writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                  if k.lower() == "content-length")
    return int(lines[0].split()[1]), length


def generate_load(args: tuple[int, str, str, str, list[bytes], int, float, float]) -> tuple[
        list[float], dict[int, int], float]:
    port, cert, key, root, requests, connections, warmup, duration = args
    context = ssl.create_default_context(cafile=root)
    context.load_cert_chain(cert, key)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cpu = [0.0]  # CPU seconds this load generator used while measuring

    async def run() -> None:
        ignored: list[float] = []
        ignored_statuses: dict[int, int] = {}
        until = time.monotonic() + warmup
        await asyncio.gather(*(connection(port, context, requests, i * 97, until, ignored,
                                          ignored_statuses) for i in range(connections)))
        until = time.monotonic() + duration
        started = time.process_time()
        await asyncio.gather(*(connection(port, context, requests, i * 131, until, latencies,
                                          statuses) for i in range(connections)))
        cpu[0] = time.process_time() - started
    asyncio.run(run())
    return latencies, statuses, cpu[0]


# -- orchestration -------------------------------------------------------------------------------

def start_server(data_dir: Path, database_url: str | None, workers: int) -> tuple[
        ServerProcess, int]:
    settings = Settings(data_dir, database_url, "http://127.0.0.1:8080")
    # a loaded machine starts 2 listeners x N workers slowly
    server = ServerProcess(settings, free_port(), free_port(), workers=workers).start(240)
    time.sleep(10.0)  # every worker up (the first one answering is not all)
    return server, int(server.https_port or 0)


def one_run(args: argparse.Namespace, port: int, files: tuple[Path, Path, Path],
            requests: list[bytes]) -> tuple[float, list[float], dict[int, int], float]:
    cert, key, root = (str(f) for f in files)
    jobs = [(port, cert, key, root, requests, args.connections, args.warmup, args.duration)
            for _ in range(args.clients)]
    with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
        results = pool.map(generate_load, jobs)
    latencies = [x for r in results for x in r[0]]
    statuses: dict[int, int] = {}
    for _, counted, _ in results:
        for status, count in counted.items():
            statuses[status] = statuses.get(status, 0) + count
    load_cpu = sum(r[2] for r in results) / args.duration  # cores the load generators used
    return statuses.get(200, 0) / args.duration, latencies, statuses, load_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=8, help="per load generator")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csrs", type=int, default=500)
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        pki = build_pki(Settings(data_dir, args.database_url, "http://127.0.0.1:8080"))
        create_demo_hierarchy(pki)
        files = client_files(Path(tmp), pki)
        in_process = rate(single(pki, make_issuance_csrs(1000)), 3)
        pki.close()
        process, port = start_server(data_dir, args.database_url, args.workers)
        try:
            requests = requests_for(port, [encode_base64_body(renewal_csr())
                                           for _ in range(args.csrs)])
            runs = [one_run(args, port, files, requests) for _ in range(args.repeat)]
        finally:
            process.stop()
    report(args, runs, in_process)


def report(args: argparse.Namespace,
           runs: list[tuple[float, list[float], dict[int, int], float]],
           in_process: float) -> None:
    rates = sorted(r[0] for r in runs)
    median = statistics.median(rates)
    latencies = sorted(runs[len(runs) // 2][1]) or [0.0]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"# EST simplereenroll over TLS, keep-alive; {args.workers} server workers, "
          f"{args.clients}x{args.connections} connections, {args.duration:.0f} s runs")
    print(f"# {machine}")
    print(f"enrollments/s (median of {args.repeat}): {median:.0f}   runs: "
          + ", ".join(f"{r:.0f}" for r in rates))
    print(f"latency p50 {1000 * latencies[len(latencies) // 2]:.1f} ms, "
          f"p99 {1000 * latencies[int(len(latencies) * 0.99)]:.1f} ms")
    print(f"statuses: {runs[-1][2]}")
    print("load generator CPU (cores busy, per run): "
          + ", ".join(f"{r[3]:.2f}" for r in runs))
    print(f"in-process issuance (1 per transaction): {in_process:.0f}/s; "
          f"EST/in-process = {median / in_process:.2f}")


if __name__ == "__main__":
    main()
