"""Benchmark: CPU of one EST simplereenroll (RFC 7030 §4.2.2) in process, without TLS, for a
machine shared with others where rates and wall times say little.

Method: make the demo PKI in a temporary directory and `--devices` devices, each with a
current operational certificate (issued in process) and one renewal CSR (new key, same
subject and SAN), as bench/est.py does. Then open the PKI as an `iotpki serve` worker does
(group commit), build the HTTPS application (`app.https_app`) and call it as ASGI, one
renewal after another, each with the scope our HTTPS listener gives (`https_server.
TLSHttpToolsProtocol`: the ASGI TLS extension with the client certificate as PEM, TLS 1.3,
a tls-exporter value). Every answer is checked (200, one certificate in a certs-only
PKCS#7) after the timed loop. Prints the process's CPU time (process_time: all threads) per
renewal; the TLS handshake is not in it (bench/est.py measures it with).

    python bench/est_cpu.py [--devices 600] [--warmup 100]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import cProfile
import os
import tempfile
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.app import build_pki, https_app
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.protocols.est import routes
from iotpki.settings import Settings
from iotpki.wire.est import decode_certs_only, encode_base64_body
from iotpki.wire.keys import generate_private_key

CA = "operatorco-operations"
DOMAIN = "urn:iotpki:domain:building-42.operator.example"
PATH = "/.well-known/est/simplereenroll"

Device = tuple[str, bytes]  # (its current certificate as PEM, its renewal request body)


def _csr(key: Any, name: str) -> bytes:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(DOMAIN)]),
                           False)
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER))


def population(pki: Any, count: int) -> list[Device]:
    devices: list[Device] = []
    for start in range(0, count, 200):
        names = [f"bench-est-{index}" for index in range(start, min(count, start + 200))]
        outcomes = pki.issuance.issue_many([
            IssuanceRequest(CA, "operational", _csr(generate_private_key("ec-p256"), name),
                            "bench") for name in names])
        for name, outcome in zip(names, outcomes, strict=True):
            assert isinstance(outcome, Issued), outcome
            pem = outcome.certificate.public_bytes(serialization.Encoding.PEM).decode()
            devices.append((pem, encode_base64_body(_csr(generate_private_key("ec-p256"),
                                                         name))))
    return devices


def scope_for(device: Device) -> dict[str, Any]:
    """What `TLSHttpToolsProtocol` gives the application for a TLS 1.3 connection."""
    pem, body = device
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "https", "path": PATH,
            "raw_path": PATH.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/pkcs10"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8443), "state": {},
            "extensions": {"tls": {"client_cert_chain": [pem], "tls_version": "TLSv1.3",
                                   "server_cert": None, "tls_unique": None,
                                   "tls_exporter": os.urandom(32)}}}


async def renew(app: Any, device: Device) -> tuple[int, bytes]:
    body = device[1]
    sent = False
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(scope_for(device), receive, send)
    return answer.get("status", 0), answer["body"]


async def drive(app: Any, devices: list[Device]) -> list[tuple[int, bytes]]:
    return [await renew(app, device) for device in devices]


def check(answers: list[tuple[int, bytes]]) -> None:
    for status, body in answers:
        if status != 200 or len(decode_certs_only(body)) != 1:
            raise SystemExit(f"renewal refused: {status} {body[:200]!r}")


async def _in_this_thread(function: Any, *args: Any) -> Any:
    return function(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(Path(tmp) / "data", None, public_url="http://127.0.0.1:8080")
        pki = build_pki(settings)
        create_demo_hierarchy(pki)
        devices = population(pki, args.warmup + args.devices)
        pki.close()
        worker = build_pki(settings, migrate=False, group_commit=True)
        app = https_app(worker)
        check(asyncio.run(drive(app, devices[:args.warmup])))
        if args.profile is not None:
            routes.run_in_threadpool = _in_this_thread  # type: ignore[assignment]
            profile = cProfile.Profile(time.process_time)
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        answers = asyncio.run(drive(app, devices[args.warmup:]))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if args.profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        worker.close()
        check(answers)
    print(f"# EST simplereenroll in process (ASGI, no TLS), {args.devices} renewals; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"CPU per renewal: {1000 * cpu / args.devices:.3f} ms   "
          f"(wall {1000 * wall / args.devices:.3f} ms)")


if __name__ == "__main__":
    main()
