"""In-process issuance rate: CSR verify → policy → signed, stored, audited certificate.

    python bench/issuance.py                       # SQLite in a temporary data directory
    python bench/issuance.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    python bench/issuance.py --key-backend pkcs11   # CA keys on a fresh SoftHSM2 token
    python bench/issuance.py --synchronous NORMAL   # SQLite without an fsync per COMMIT

Runs in one process (one core). Reports the median of --repeat runs for: signing alone,
CSR verification plus signing, the full single-request path (one transaction per
certificate), and the batch path (`issue_many`, one transaction per --batch requests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.hsm: the SoftHSM2 token

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.settings import Settings
from iotpki.wire.csr import decode_csr, verify_csr
from iotpki.wire.keys import generate_private_key

CA = "operatorco-operations"
DOMAIN = "urn:iotpki:domain:building-42.operator.example"


def make_csrs(count: int) -> list[bytes]:
    csrs = []
    for i in range(count):
        key = generate_private_key("ec-p256")
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"sensor-{i}")])
        ).add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(DOMAIN)]), False)
        csrs.append(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    return csrs


def rate(run: Callable[[], int], repeat: int) -> float:
    return measure(run, repeat)[0]


def measure(run: Callable[[], int], repeat: int) -> tuple[float, float]:
    """(items per second, CPU µs of this process per item), medians of `repeat` runs. The
    CPU time leaves out waiting (an fsync, other processes on a shared machine's cores), so
    it survives load better than the rate."""
    rates, cpu = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        done = run()
        rates.append(done / (time.perf_counter() - start))
        cpu.append(1e6 * (time.process_time() - cpu_start) / done)
    return statistics.median(rates), statistics.median(cpu)


def sign_only(pki: PKI, csrs: list[bytes]) -> Callable[[], int]:
    """The floor: build and sign, no CSR check, no storage (the same extensions)."""
    service = pki.issuance
    signing = service._signing_for(CA)
    profile = pki.profiles["operational"]
    now = pki.authorities.get(CA).created_at
    templates = [service._decide(IssuanceRequest(CA, "operational", c, "bench"), now)[2]
                 for c in csrs[:200]]

    def run() -> int:
        for i in range(len(csrs)):
            template = templates[i % len(templates)]
            service._build(signing, profile, template, signing.crl_shard(template.not_after))
        return len(csrs)
    return run


def verify_and_sign(pki: PKI, csrs: list[bytes]) -> Callable[[], int]:
    base = sign_only(pki, csrs)

    def run() -> int:
        for csr in csrs:
            verify_csr(decode_csr(csr))
        return base()
    return run


def single(pki: PKI, csrs: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        for csr in csrs:
            pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "bench"))
        return len(csrs)
    return run


def batched(pki: PKI, csrs: list[bytes], size: int) -> Callable[[], int]:
    requests = [IssuanceRequest(CA, "operational", c, "bench") for c in csrs]

    def run() -> int:
        for i in range(0, len(requests), size):
            pki.issuance.issue_many(requests[i:i + size])
        return len(requests)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--count", type=int, default=2000, help="certificates per run")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--key-backend", choices=["software", "pkcs11"], default="software",
                        help="pkcs11: the CA keys on a SoftHSM2 token made for the run")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL",
                        help="SQLite durability (iotpki runs FULL; NORMAL shows the fsync's cost)")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_pki(settings_for(Path(tmp), args))
        if args.synchronous != "FULL":
            relax_durability(pki, args.synchronous)
        create_demo_hierarchy(pki)
        csrs = make_csrs(args.count)
        single(pki, csrs[:50])()  # warm caches (CA key, statements)
        results = {
            "database": pki.database.dialect,
            "key backend": args.key_backend,
            "sign only": measure(sign_only(pki, csrs), args.repeat),
            "CSR verify + sign": measure(verify_and_sign(pki, csrs), args.repeat),
            "issue (1 per transaction)": measure(single(pki, csrs), args.repeat),
            f"issue_many (batch {args.batch})": measure(batched(pki, csrs, args.batch),
                                                        args.repeat),
        }
        pki.close()
    report(results, args)


def relax_durability(pki: PKI, synchronous: str) -> None:
    """SQLite `synchronous` other than iotpki's FULL on every connection (a measurement only:
    with NORMAL a power cut can lose the last committed certificates)."""
    engine = pki.database.engine
    if engine.dialect.name != "sqlite":
        raise SystemExit("--synchronous applies to SQLite only")

    @event.listens_for(engine, "connect")
    def _relax(dbapi_connection: Any, _record: Any) -> None:  # after iotpki's own listener
        dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")
    engine.dispose()  # connections made before the listener


def settings_for(data_dir: Path, args: argparse.Namespace) -> Settings:
    """Software keys in the data directory, or keys on a SoftHSM2 token made beside it."""
    if args.key_backend == "software":
        return Settings(data_dir, args.database_url, public_url="http://pki.example:8080")
    from tests.hsm import make_softhsm

    hsm = make_softhsm(data_dir / "softhsm", ("iotpki-bench",))
    os.environ.update(hsm.environment())
    return Settings(data_dir / "data", args.database_url, public_url="http://pki.example:8080",
                    key_backend="pkcs11", pkcs11_token=hsm.uri)


def report(results: dict[str, object], args: argparse.Namespace) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# issuance, {results['database']} (synchronous={args.synchronous}), "
          f"CA keys: {results['key backend']}, "
          f"{args.count} certs/run, median of {args.repeat}")
    print(f"# {machine}")
    baseline = results["CSR verify + sign"][0]  # type: ignore[index]
    for name, value in results.items():
        if isinstance(value, tuple):
            per_s, cpu = value
            print(f"{name:32s} {per_s:9.0f} /s   {per_s / baseline:5.2f}x CSR verify + sign"
                  f"   CPU {cpu:7.0f} µs each")
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        args.json.write_text(json.dumps({**results, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
