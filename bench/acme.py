"""Benchmark: ACME finalize per second for pre-authorized orders (RFC 8555 §7.4) against
`iotpki serve --https-port --workers N`, load from separate processes.

Method: the demo PKI and its packaged ACME endpoint `""` (operatorco-operations, profile
service). Before the clock starts, one account proves control of one name with http-01 (a
responder in this process), then creates `--requests` orders for that name: each is `ready`
at once, its authorization reused (§7.1.3). The CSRs (P-256, one key each) are built ahead
too. L load processes with T threads each (httpx over HTTPS, keep-alive, the Replay-Nonce
of each answer used for the next request) post the signed finalize requests for D seconds;
each answer must be 200 with the order `valid`. A finalize is one JWS check, one nonce
swap, the order's state change and one issuance through the core pipeline (policy,
signature, certificate row, audit entry, event). Median of `--runs` runs, with the
in-process issuance rate of `bench/issuance.py` for the ratio.

    python bench/acme.py [--workers 2] [--loaders 2] [--threads 4] [--duration 10] [--runs 3]
                         [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, bench.*

import argparse
import base64
import json
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Sequence
from functools import partial

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.acme.client import JOSE, ACMEClient, Responder
from tests.factories import make_csr
from tests.servers import ServerProcess, free_port

from bench.cmp import in_process_rate, prepare
from bench.cpu import load_average
from bench.load import run_load, threaded
from iotpki.app import build_pki
from iotpki.settings import Settings
from iotpki.wire.acme.jws import sign_jws
from iotpki.wire.keys import generate_private_key

CA = "operatorco-operations"
NAME = "bench.acme.example"  # in no organization's domain: any account may have it


def root_pem(settings: Settings, path: Path) -> Path:
    pki = build_pki(settings)
    try:
        path.write_bytes(pki.authorities.get(CA).full_chain[-1].public_bytes(
            serialization.Encoding.PEM))
    finally:
        pki.close()
    return path


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ready_orders(client: ACMEClient, responder: Responder, count: int) -> list[str]:
    """The finalize URLs of `count` orders that are ready (one http-01 for the name)."""
    first = client.new_order(NAME).json()
    for challenge in client.challenge(first, "http-01"):
        responder.answers[challenge["token"]] = \
            client.key_authorization(challenge["token"]).encode()
        assert client.post(challenge["url"], {}).json()["status"] == "valid"
    urls = [first["finalize"]]
    while len(urls) < count:
        order = client.new_order(NAME).json()
        if order.get("status") != "ready":
            raise SystemExit(f"order not ready: {order}")
        urls.append(order["finalize"])
    return urls


def finalize_client(base: str, root: str, key_pem: bytes, kid: str,
                    work: Sequence[tuple[str, str]], stop_at: float, results: list[bool]) -> None:
    """One keep-alive connection finalizing its orders until `stop_at` (bench/load.py)."""
    key = serialization.load_pem_private_key(key_pem, None)
    with httpx.Client(verify=ssl.create_default_context(cafile=root), timeout=120) as http:
        nonce = http.head(f"{base}/acme/new-nonce").headers["Replay-Nonce"]
        for url, csr in work:
            if time.monotonic() >= stop_at:
                break
            body = sign_jws(key, {"csr": csr}, url, nonce, kid=kid)  # type: ignore[arg-type]
            answer = http.post(url, content=json.dumps(body), headers=JOSE)
            nonce = answer.headers["Replay-Nonce"]
            results.append(answer.status_code == 200 and answer.json()["status"] == "valid")


def run(server: ServerProcess, root: Path, key_pem: bytes, kid: str,
        work: list[tuple[str, str]], loaders: int, threads: int,
        duration: float) -> tuple[float, int, int, float, float]:
    """(finalizes/s, successes, answers, load-process cores, server CPU ms per answer)."""
    assert server.process is not None
    loader = threaded(partial(finalize_client, server.https_url, str(root), key_pem, kid), threads)
    measured = run_load(server.process.pid, loader, work, loaders, duration, timeout=300)
    good = sum(measured.answers)
    return (measured.rate(good), good, len(measured.answers), measured.load_cores,
            measured.server_ms_per_answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500, help="ready orders per run")
    parser.add_argument("--database-url")
    parser.add_argument("--in-process", type=int, default=1000,
                        help="certificates of the in-process rate (the ratio's denominator)")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "bench passphrase, not a secret")
    responder = Responder()
    os.environ["IOTPKI_ACME_HTTP_PORT"] = str(responder.port)
    os.environ["IOTPKI_ACME_CONNECT_ADDRESS"] = "127.0.0.1"
    os.environ["IOTPKI_ACME_ORDERS_PER_HOUR"] = "0"  # the run's orders exceed the default
    with tempfile.TemporaryDirectory() as tmp:
        port, https_port = free_port(), free_port()
        settings = Settings(Path(tmp) / "data", args.database_url, public_url=f"http://127.0.0.1:{port}")
        prepare(settings)
        root = root_pem(settings, Path(tmp) / "root.pem")
        in_process = in_process_rate(settings, args.in_process)
        server = ServerProcess(settings, port, https_port, workers=args.workers,
                               log_path=settings.data_dir.parent / "server.log").start(timeout=240)
        try:
            key = generate_private_key("ec-p256")
            key_pem = key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            with httpx.Client(verify=ssl.create_default_context(cafile=root),
                              timeout=120) as http:
                client = ACMEClient(http, f"{server.https_url}/acme/directory", key)
                assert client.new_account().status_code == 201
                results, cpu_ms = [], []
                for number in range(args.runs):
                    urls = ready_orders(client, responder, args.requests)
                    work = [(url, b64(make_csr(NAME, [x509.DNSName(NAME)])[0])) for url in urls]
                    per_s, good, total, load_cpu, server_ms = run(
                        server, root, key_pem, client.kid or "", work, args.loaders,
                        args.threads, args.duration)
                    print(f"run {number + 1}: {per_s:.0f} finalizes/s ({good} valid of {total}); "
                          f"server CPU {server_ms:.2f} ms/request; load processes used "
                          f"{load_cpu:.2f} cores; load average {load_average():.1f}", flush=True)
                    if good != total:
                        raise SystemExit(f"{total - good} finalize answers were not valid")
                    results.append(per_s)
                    cpu_ms.append(server_ms)
            median = statistics.median(results)
            print(f"server CPU ms/request (median): {statistics.median(cpu_ms):.2f}")
            print(f"median: {median:.0f} finalizes/s "
                  f"(workers {args.workers}, loaders {args.loaders}x{args.threads}, "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}); in-process issuance "
                  f"{in_process:.0f}/s; ACME/in-process = {median / in_process:.2f}; "
                  f"load average {os.getloadavg()[0]:.1f}")
        finally:
            server.stop()
            responder.close()


if __name__ == "__main__":
    main()
