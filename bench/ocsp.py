"""Benchmark: OCSP responses per second (RFC 6960 / RFC 5019) with wrk, side by side with
OpenSSL's own responder (`openssl ocsp -index ... -multi`), on this machine.

Method (docs/performance-revocation.md, BENCHMARKING.md): N certificates issued by the demo
operational CA (one in ten revoked), one pre-built request per certificate (SHA-1 CertID, no
nonce), cycled by bench/ocsp_wrk.lua; wrk with 2 threads, 16 and 64 connections, 10 s runs,
median of 3, keep-alive and Connection: close. OpenSSL's responder listens on every interface,
so it and its wrk run inside `unshare --net` with only loopback up.

    python bench/ocsp.py [--certificates 1000] [--workers 2] [--runs 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.servers

from tests.servers import ServerProcess, free_port

from bench.cpu import load_average, tree_cpu
from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import DEMO_DOMAIN, create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.wire.keys import generate_private_key

CA = "operatorco-operations"
LUA = Path(__file__).with_name("ocsp_wrk.lua")
PEM = serialization.Encoding.PEM


@dataclass
class Result:
    label: str
    rps: float
    p50: str
    p99: str
    wrk_cpu: float  # CPU seconds wrk used per second of run
    server_us: float = 0.0  # server process tree CPU µs per response
    load: float = 0.0  # 1-minute load average at the end


def csr_for(name: str) -> bytes:
    key = generate_private_key("ec-p256")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(
        f"urn:iotpki:domain:{DEMO_DOMAIN}")])  # a domain the CA's organization owns
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).add_extension(
        san, False).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def issue_population(pki: PKI, count: int) -> list[Issued]:
    issued = []
    for index in range(count):
        outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr_for(f"dev-{index}"),
                                                     "bench"))
        assert isinstance(outcome, Issued)
        if index % 10 == 0:
            pki.revocation.revoke(CA, outcome.record.serial, x509.ReasonFlags.key_compromise,
                                  "bench")
        issued.append(outcome)
    return issued


def write_requests(issued: list[Issued], path: Path) -> None:
    with path.open("wb") as out:
        for item in issued:
            der = ocsp.OCSPRequestBuilder().add_certificate(
                item.certificate, item.chain[0], hashes.SHA1()).build().public_bytes(
                    serialization.Encoding.DER)
            out.write(len(der).to_bytes(2, "big") + der)


def write_openssl_responder(pki: PKI, issued: list[Issued], work: Path) -> None:
    """index.txt (OpenSSL `ca` database), CA certificate, and a delegated responder issued by
    our CA from the ocsp-responder profile with a key OpenSSL can read."""
    key = generate_private_key("ec-p256")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenSSL bench responder")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    outcome = pki.issuance.issue(IssuanceRequest(CA, "ocsp-responder", csr.public_bytes(
        serialization.Encoding.DER), "bench"))
    assert isinstance(outcome, Issued)
    (work / "rsigner.pem").write_bytes(outcome.certificate.public_bytes(PEM))
    (work / "rkey.pem").write_bytes(key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (work / "ca.pem").write_bytes(issued[0].chain[0].public_bytes(PEM))
    lines = [_index_line(pki, item) for item in issued]
    (work / "index.txt").write_text("".join(lines))


def _index_line(pki: PKI, item: Issued) -> str:
    record = pki.certificates.get(CA, item.record.serial)
    expiry = record.not_after.strftime("%y%m%d%H%M%SZ")
    serial = format(record.serial, "X")
    if len(serial) % 2:
        serial = "0" + serial
    subject = "/" + "/".join(a.rfc4514_string() for a in record.certificate.subject)
    if record.revoked_at is None:
        return f"V\t{expiry}\t\t{serial}\tunknown\t{subject}\n"
    revoked = record.revoked_at.astimezone(UTC).strftime("%y%m%d%H%M%SZ")
    return f"R\t{expiry}\t{revoked},keyCompromise\t{serial}\tunknown\t{subject}\n"


def wrk_command(url: str, connections: int, duration: int) -> list[str]:
    return ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
            "-s", str(LUA), url]


def parse_wrk(output: str) -> tuple[float, str, str]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        print(f"    warning: {errors.group(1)} non-2xx responses", file=sys.stderr)
    return float(rps.group(1)), p50.group(1), p99.group(1)


def measured(command: list[str], env: dict[str, str], duration: int) -> tuple[str, float]:
    """Run a command (wrk, or a shell that runs it); return its output and its CPU/second."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=duration + 60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout + done.stderr, cpu / duration


def median_result(label: str, runs: list[tuple[float, str, str, float]],
                  server_us: list[float] | None = None) -> Result:
    middle = sorted(runs)[len(runs) // 2]
    return Result(label, statistics.median(r[0] for r in runs), middle[1], middle[2],
                  statistics.median(r[3] for r in runs),
                  statistics.median(server_us) if server_us else 0.0, load_average())


def wait_idle(seconds: float) -> None:
    time.sleep(seconds)  # let the previous run's connections drain


def answered(output: str) -> int:
    found = re.search(r"(\d+) requests in", output)
    if found is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    return int(found.group(1))


def bench_ours(url: str, env: dict[str, str], args: argparse.Namespace,
               server: ServerProcess) -> list[Result]:
    assert server.process is not None
    results = []
    for mode, close in (("post", False), ("get", False), ("post", True)):
        for connections in args.connections:
            runs, server_us = [], []
            run_env = {**env, "OCSP_MODE": mode, "OCSP_PATH": f"/ocsp/{CA}" + (
                "/" if mode == "get" else ""), "OCSP_CLOSE": "1" if close else "0"}
            for _ in range(args.runs):
                wait_idle(args.settle)
                before = tree_cpu(server.process.pid)
                output, cpu = measured(wrk_command(url, connections, args.duration), run_env,
                                       args.duration)
                spent = tree_cpu(server.process.pid) - before
                runs.append((*parse_wrk(output), cpu))
                server_us.append(1e6 * spent / max(answered(output), 1))
            label = f"iotpki {mode.upper()} {'close' if close else 'keep-alive'} c{connections}"
            results.append(median_result(label, runs, server_us))
            print(_row(results[-1]), flush=True)
    return results


def bench_openssl(work: Path, env: dict[str, str], args: argparse.Namespace) -> list[Result]:
    results = []
    for mode in ("post", "get"):
        for connections in args.connections:
            runs = []
            run_env = {**env, "OCSP_MODE": mode, "OCSP_PATH": "/", "OCSP_CLOSE": "0"}
            for _ in range(args.runs):
                wait_idle(args.settle)
                output, cpu = measured(_netns_command(work, connections, args), run_env,
                                       args.duration)
                runs.append((*parse_wrk(output), cpu))
            label = f"openssl ocsp -multi {args.workers} {mode.upper()} c{connections}"
            results.append(median_result(label, runs))
            print(_row(results[-1]), flush=True)
    return results


def _netns_command(work: Path, connections: int, args: argparse.Namespace) -> list[str]:
    responder = ["openssl", "ocsp", "-index", "index.txt", "-port", "8888", "-rsigner",
                 "rsigner.pem", "-rkey", "rkey.pem", "-CA", "ca.pem", "-multi",
                 str(args.workers), "-ignore_err", "-nmin", "240"]
    wrk = wrk_command("http://127.0.0.1:8888/", connections, args.duration)
    script = (f"cd {shlex.quote(str(work))} && ip link set lo up && "
              f"({shlex.join(responder)} >/dev/null 2>&1 &) && sleep 1 && {shlex.join(wrk)}")
    # PID 1 of the new PID namespace is this shell: when it exits, the kernel ends the
    # responder with it.
    return ["unshare", "--net", "--fork", "--pid", "--mount-proc", "sh", "-c", script]


def _row(result: Result) -> str:
    server = f"{result.server_us:.0f}" if result.server_us else "-"
    return (f"| {result.label} | {result.rps:,.0f} | {server} | {result.p50} | {result.p99} | "
            f"{result.wrk_cpu:.2f} | {result.load:.1f} |")


def start_server(settings: Settings, port: int, workers: int) -> ServerProcess:
    return ServerProcess(settings, port, workers=workers).start(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--database-url", default=os.environ.get("IOTPKI_DATABASE_URL"))
    parser.add_argument("--skip-openssl", action="store_true")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds between runs for connections to drain")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        settings = Settings(data_dir=work / "data", database_url=args.database_url,
                            public_url=f"http://127.0.0.1:{port}")
        pki = build_pki(settings)
        try:
            create_demo_hierarchy(pki)
            issued = issue_population(pki, args.certificates)
            write_requests(issued, work / "requests.bin")
            write_openssl_responder(pki, issued, work)
        finally:
            pki.close()
        env = {**os.environ, "OCSP_REQUESTS": str(work / "requests.bin")}
        print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
              f"{args.certificates} certificates, {args.workers} workers")
        print("| server, mode | responses/s | server CPU µs/resp | p50 | p99 | wrk CPU s/s | "
              "load |\n|---|---|---|---|---|---|---|")
        server = start_server(settings, port, args.workers)
        try:
            warm = {**env, "OCSP_MODE": "post", "OCSP_PATH": f"/ocsp/{CA}", "OCSP_CLOSE": "0"}
            warm_seconds = min(3, args.duration)
            measured(wrk_command(f"http://127.0.0.1:{port}", 16, warm_seconds), warm,
                     warm_seconds)  # fill caches
            bench_ours(f"http://127.0.0.1:{port}", env, args, server)
        finally:
            server.stop()
        if not args.skip_openssl:
            bench_openssl(work, env, args)


if __name__ == "__main__":
    main()
