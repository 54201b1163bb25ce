"""Benchmark: SCEP PKCSReq per second (RFC 8894 §3.3.1, challengePassword of a reusable
credential, AES-128 envelope, SHA-256) against `iotpki serve --workers N`, load from
separate processes.

Method: the demo PKI and its packaged SCEP endpoint `""` (operatorco-operations,
operational, one-time-secret); one reusable credential (RFC-style challenge
`<reference>:<secret>`, `uses` = every request of the run) bound to the demo domain. The
PKCSReq messages are built before the clock starts, each with its own senderNonce and
transactionID, encrypted to the endpoint's RA certificate and signed by a self-signed
requester certificate; the requesters' RSA-2048 keys come from a pool of `--keys` (RSA key
generation would otherwise dominate the preparation, not the measured run). L load
processes, each with T threads on keep-alive `http.client` connections, post them for D
seconds. Every answer is checked afterwards (a CertRep with pkiStatus SUCCESS). Median of
`--runs` runs, with the in-process issuance rate of `bench/issuance.py` for the ratio.

    python bench/scep.py [--workers 2] [--loaders 2] [--threads 8] [--duration 10] [--runs 3]
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
import urllib.request
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID
from tests.servers import ServerProcess, free_port

from bench.cmp import in_process_rate, prepare
from bench.cpu import load_average
from bench.load import run_load, threaded
from iotpki.app import build_pki
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.scep.attributes import MessageType, PKIStatus
from iotpki.wire.scep.envelope import encode_envelope
from iotpki.wire.scep.message import Attributes, decode_pki_message, encode_pki_message

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
PATH = "/scep?operation=PKIOperation"


def credential(settings: Settings, name: str, uses: int) -> str:
    """A reusable credential for `uses` issuances; the challengePassword."""
    pki = build_pki(settings)
    try:
        created = pki.registrations.create(RegistrationSpec(
            "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET, domain=DOMAIN,
            reference=name, uses=uses, lifetime=timedelta(days=1)), "bench")
        return f"{name}:{created.secret}"
    finally:
        pki.close()


def ra_certificate(port: int) -> x509.Certificate:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/scep?operation=GetCACert",
                                timeout=60) as answer:
        body = answer.read()
    with warnings.catch_warnings():  # the SET OF is in the order clients rely on, not DER's
        warnings.simplefilter("ignore", UserWarning)
        certificates = pkcs7.load_der_pkcs7_certificates(body)
    return next(c for c in certificates
                if not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)


def requesters(count: int) -> list[tuple[rsa.RSAPrivateKey, x509.Certificate]]:
    now = datetime.now(UTC)
    made = []
    for index in range(count):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"scep-bench-{index}")])
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(minutes=5))
                       .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
        made.append((key, certificate))
    return made


def build_requests(pool: list[tuple[rsa.RSAPrivateKey, x509.Certificate]], ra: x509.Certificate,
                   challenge: str, count: int, prefix: str) -> list[bytes]:
    now = datetime.now(UTC)
    requests = []
    for index in range(count):
        key, certificate = pool[index % len(pool)]
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(
                   NameOID.COMMON_NAME, f"sensor-scep-{prefix}-{index}")]))
               .add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
               .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
        attributes = Attributes(MessageType.PKCS_REQ, f"bench-{prefix}-{index}", os.urandom(16))
        requests.append(encode_pki_message(attributes, encode_envelope(csr, ra), key,
                                           certificate, [certificate], now))
    return requests


def client(port: int, requests: Sequence[bytes], stop_at: float, answers: list[bytes]) -> None:
    """One keep-alive connection posting its requests until `stop_at` (bench/load.py)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for request in requests:
        if time.monotonic() >= stop_at:
            break
        connection.request("POST", PATH, request,
                           {"Content-Type": "application/x-pki-message"})
        answers.append(connection.getresponse().read())
    connection.close()


def succeeded(answer: bytes) -> bool:
    try:
        return decode_pki_message(answer).pki_status is PKIStatus.SUCCESS
    except Exception:  # an HTTP error body, not a CertRep
        return False


def run(server: ServerProcess, requests: list[bytes], loaders: int, threads: int,
        duration: float) -> tuple[float, int, int, float, float]:
    """(certificates/s, successes, answers, load-process cores, server CPU ms per answer)."""
    assert server.process is not None
    measured = run_load(server.process.pid, threaded(partial(client, server.http_port), threads),
                        requests, loaders, duration, timeout=180)
    answers = measured.answers
    good = sum(1 for a in answers if succeeded(a))
    if good != len(answers):
        failed = next(a for a in answers if not succeeded(a))
        print(f"first failure of {len(answers) - good}: {failed[:300]!r}", flush=True)
    return (measured.rate(good), good, len(answers), measured.load_cores,
            measured.server_ms_per_answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000, help="pre-built per run")
    parser.add_argument("--keys", type=int, default=16, help="requester RSA keys, reused")
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
        server = ServerProcess(settings, port, workers=args.workers,
                               log_path=settings.data_dir.parent / "server.log").start(timeout=180)
        try:
            ra = ra_certificate(port)
            pool = requesters(args.keys)
            results, cpu_ms = [], []
            for number in range(args.runs):
                challenge = credential(settings, f"bench-line-{number}", args.requests)
                requests = build_requests(pool, ra, challenge, args.requests, str(number))
                per_s, good, total, load_cpu, server_ms = run(server, requests, args.loaders,
                                                              args.threads, args.duration)
                print(f"run {number + 1}: {per_s:.0f} certs/s ({good} SUCCESS of {total}); "
                      f"server CPU {server_ms:.2f} ms/request; load processes used "
                      f"{load_cpu:.2f} cores; load average {load_average():.1f}", flush=True)
                if good != total:
                    raise SystemExit(f"{total - good} answers were not a CertRep SUCCESS")
                results.append(per_s)
                cpu_ms.append(server_ms)
            median = statistics.median(results)
            print(f"server CPU ms/request (median): {statistics.median(cpu_ms):.2f}")
            print(f"median: {median:.0f} certs/s "
                  f"(workers {args.workers}, loaders {args.loaders}x{args.threads}, "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}); in-process issuance "
                  f"{in_process:.0f}/s; SCEP/in-process = {median / in_process:.2f}; "
                  f"load average {os.getloadavg()[0]:.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
