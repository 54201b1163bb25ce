"""Benchmark: CMP certificate requests per second (RFC 9483 §4.1.2 cr, signature-protected,
implicitConfirm) against `iotpki serve --workers N`, load from separate processes.

Method: the demo PKI; R devices, each with a current operational certificate (issued in
process before the run; a fresh population per run, since only the newest certificate of an
identity renews); one cr message per device is built before the clock starts (a new P-256
key and POP each, signed by the device's current certificate, `wire.cmp.requests`); L load
processes, each with T threads on keep-alive `http.client` connections, post them for D
seconds. Every answer is checked afterwards (body cp, PKIStatus accepted). Median of `--runs` runs.

    python bench/cmp.py [--workers 2] [--loaders 2] [--threads 8] [--duration 10] [--runs 3]
                        [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, bench.*

import argparse
import http.client
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc9480
from tests.factories import domain_uri, make_csr
from tests.servers import ServerProcess, free_port

from bench.cpu import load_average
from bench.issuance import make_csrs as make_issuance_csrs
from bench.issuance import rate, single
from bench.load import run_load, threaded
from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.keys import generate_private_key

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
SUBJECT = "sensor-bench"


Device = tuple[object, tuple[x509.Certificate, ...]]  # (key, chain from its certificate)


def prepare(settings: Settings) -> None:
    pki = build_pki(settings)
    try:
        create_demo_hierarchy(pki)
    finally:
        pki.close()


def population(settings: Settings, prefix: str, count: int) -> list[Device]:
    """`count` devices with a current operational certificate each, issued in process.
    Each renews once in a run: only the newest certificate of an identity renews."""
    pki = build_pki(settings)
    try:
        made = [(f"{SUBJECT}-{prefix}-{index}", make_csr(f"{SUBJECT}-{prefix}-{index}",
                                                          [domain_uri(DOMAIN)]))
                for index in range(count)]
        devices: list[Device] = []
        for start in range(0, count, 200):
            batch = made[start:start + 200]
            outcomes = pki.issuance.issue_many([IssuanceRequest(CA, "operational", csr, "bench")
                                                for _, (csr, _) in batch])
            for (_, (_, key)), outcome in zip(batch, outcomes, strict=True):
                assert isinstance(outcome, Issued), outcome
                devices.append((key, (outcome.certificate, *outcome.chain[:-1])))
        return devices
    finally:
        pki.close()


def build_requests(devices: list[Device]) -> list[bytes]:
    """One cr per device (a new P-256 key), signed with the device's current certificate."""
    now = datetime.now(UTC)
    return [encode_signed_request("cr", encode_cert_req_msg(generate_private_key("ec-p256"),
                                                            chain[0].subject), key, chain, now)
            for key, chain in devices]


def serve(settings: Settings, port: int, workers: int) -> ServerProcess:
    return ServerProcess(settings, port, workers=workers,
                         log_path=settings.data_dir.parent / "server.log").start(timeout=180)


def client(port: int, requests: Sequence[bytes], stop_at: float, answers: list[bytes]) -> None:
    """One keep-alive connection posting its requests until `stop_at` (bench/load.py)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for request in requests:
        if time.monotonic() >= stop_at:
            break
        connection.request("POST", "/.well-known/cmp", request,
                           {"Content-Type": "application/pkixcmp"})
        answers.append(connection.getresponse().read())
    connection.close()


def accepted(answer: bytes) -> bool:
    message, _ = decoder.decode(answer, asn1Spec=rfc9480.PKIMessage())
    body = message["body"]
    return body.getName() == "cp" and int(body["cp"]["response"][0]["status"]["status"]) == 0


def refusal(answer: bytes) -> str:
    """What a refused answer says (for the report)."""
    message, _ = decoder.decode(answer, asn1Spec=rfc9480.PKIMessage())
    body = message["body"]
    return f"{body.getName()}: {body.prettyPrint()[:400]}"


def run(server: ServerProcess, requests: list[bytes], loaders: int, threads: int,
        duration: float) -> tuple[float, int, int, float, float]:
    """(certificates/s, accepted, answers, load-process cores, server CPU ms per answer)."""
    assert server.process is not None
    measured = run_load(server.process.pid, threaded(partial(client, server.http_port), threads),
                        requests, loaders, duration, timeout=120)
    answers = measured.answers
    good = sum(1 for a in answers if accepted(a))
    refused = [a for a in answers if not accepted(a)]
    if refused:
        print(f"first refusal of {len(refused)}: {refusal(refused[0])}", flush=True)
    return (measured.rate(good), good, len(answers), measured.load_cores,
            measured.server_ms_per_answer)


def in_process_rate(settings: Settings, count: int) -> float:
    """bench/issuance.py's single-transaction rate on this PKI, for the ratio."""
    pki = build_pki(settings)
    try:
        return rate(single(pki, make_issuance_csrs(count)), 3)
    finally:
        pki.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000,
                        help="pre-built per run, one per device of a fresh population")
    parser.add_argument("--database-url")
    parser.add_argument("--in-process", type=int, default=1000,
                        help="certificates of the in-process rate (the ratio's denominator)")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "bench passphrase, not a secret")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = Settings(Path(tmp) / "data", args.database_url, public_url=f"http://127.0.0.1:{port}")
        prepare(settings)
        in_process = in_process_rate(settings, args.in_process)
        server = serve(settings, port, args.workers)
        try:
            results, cpu_ms = [], []
            for number in range(args.runs):
                requests = build_requests(population(settings, str(number), args.requests))
                per_s, good, total, load_cpu, server_ms = run(server, requests, args.loaders,
                                                              args.threads, args.duration)
                print(f"run {number + 1}: {per_s:.0f} certs/s ({good} accepted of {total}); "
                      f"server CPU {server_ms:.2f} ms/request; load processes used "
                      f"{load_cpu:.2f} cores; load average {load_average():.1f}", flush=True)
                if good != total:
                    raise SystemExit(f"{total - good} answers were not an accepted cp")
                results.append(per_s)
                cpu_ms.append(server_ms)
            median = statistics.median(results)
            print(f"server CPU ms/request (median): {statistics.median(cpu_ms):.2f}")
            print(f"median: {median:.0f} certs/s "
                  f"(workers {args.workers}, loaders {args.loaders}x{args.threads}, "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}); in-process issuance "
                  f"{in_process:.0f}/s; CMP/in-process = {median / in_process:.2f}; "
                  f"load average {os.getloadavg()[0]:.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
