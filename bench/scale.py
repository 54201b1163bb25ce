"""Benchmark: one CA at scale on PostgreSQL with a synchronous standby and a read replica
(issue 20; docs/performance.md, "Scale: primary, synchronous standby, read replica").

On a topology of our own (tests/topology.py: primary, synchronous standby, asynchronous
replica, Debian's PostgreSQL 15), N real certificates are issued through `issue_many` (1% of
them with a `retired-` subject), then measured:

- issuance rate through `issue_many` on the empty store and at N (the hot-path slowdown);
- bulk revocation by filter of the 1% (`revoke_matching`, one transaction);
- OCSP responses/s and p99 from an `iotpki serve` node whose reads go to the replica
  (`IOTPKI_DATABASE_READ_URL`; wrk, keep-alive POST, requests for a sample of the N), while
  a writer revokes one certificate every 100 ms, and how long each of those revocations
  took to show in that node's OCSP answers;
- the API's listings: first page, a deep keyset page, status / exact-subject / expiry filters;
- database size per certificate;
- failover: a storm of `issue_many` clients, the primary killed -9, the standby promoted:
  seconds from the kill to the first certificate issued on the new primary.

    python bench/scale.py --count 200000 [--batch 500] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.topology, tests.storm

from tests.servers import ServerProcess, free_port
from tests.storm import IssuanceStorm
from tests.topology import Topology

from bench.cpu import load_average
from bench.ocsp import csr_for, measured, parse_wrk, wrk_command
from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings

CA = "operatorco-operations"
RETIRED = "retired-"  # the 1% revoked by filter
DISTINCT_CSRS = 500  # keys are reused across certificates: signing, not key generation, is timed


class Population:
    """Issues through `issue_many` and keeps a sample of what it issued (for OCSP)."""

    def __init__(self, pki: PKI, batch: int) -> None:
        self.pki = pki
        self.batch = batch
        self.count = 0
        self.sample: list[Issued] = []
        self.devices = [IssuanceRequest(CA, "operational", csr_for(f"bench-{i}"), "bench")
                        for i in range(DISTINCT_CSRS)]
        self.retired = [IssuanceRequest(CA, "operational", csr_for(f"{RETIRED}{i}"), "bench")
                        for i in range(DISTINCT_CSRS)]

    def issue(self, count: int, progress: bool = False) -> float:
        """Issue `count` more (every hundredth batch retired); certificates per second."""
        started = time.perf_counter()
        done = 0
        while done < count:
            size = min(self.batch, count - done)
            number = (self.count + done) // self.batch
            pool = self.retired if number % 100 == 99 else self.devices
            offset = (number * size) % DISTINCT_CSRS
            requests = [pool[(offset + i) % DISTINCT_CSRS] for i in range(size)]
            outcomes = self.pki.issuance.issue_many(requests)
            issued = [o for o in outcomes if isinstance(o, Issued)]
            assert len(issued) == size, outcomes[:1]
            if len(self.sample) < 20_000:
                self.sample += issued[:max(1, size // 10)]
            done += size
            if progress and (self.count + done) % 50_000 < size:
                rate = done / (time.perf_counter() - started)
                print(f"  {self.count + done} issued, {rate:.0f}/s", flush=True)
        self.count += count
        return count / (time.perf_counter() - started)


def timed(action: Callable[[], object], repeat: int = 5) -> float:
    """Median seconds of `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def listing_latencies(pki: PKI) -> dict[str, float]:
    """Milliseconds, median of 5, of the API's listing queries (limit 100) at N."""
    last = pki.listings.find(CertificateQuery(authority=CA, limit=1, newest_first=True))[0]
    deep = (last.position or 0) - 150
    soon = datetime.now(UTC) + timedelta(days=3650)
    queries = {
        "first page": CertificateQuery(authority=CA),
        "deep page (keyset, near the end)": CertificateQuery(authority=CA, after=deep),
        "filter status=revoked": CertificateQuery(authority=CA, status=CertificateStatus.REVOKED),
        "filter exact subject": CertificateQuery(authority=CA, subject="CN=bench-7"),
        "filter expiring before": CertificateQuery(authority=CA, expires_before=soon),
        "organization, first page": CertificateQuery(organization="operatorco"),
    }
    return {name: 1000 * timed(lambda q=query: pki.listings.find(q))
            for name, query in queries.items()}


def database_size(topology: Topology, count: int) -> dict[str, float]:
    out = subprocess.run(
        ["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0) + [
            "psql", "-h", "127.0.0.1", "-p", str(topology.primary.port), "-U", "postgres",
            "-d", "iotpki", "-XAtq", "-c",
            "SELECT pg_database_size('iotpki'), pg_total_relation_size('certificates'), "
            "pg_total_relation_size('audit_log')"],
        capture_output=True, text=True, check=True).stdout.strip().split("|")
    whole, table, audit = map(int, out)
    return {"database bytes/certificate": whole / count,
            "certificates table+indexes bytes/certificate": table / count,
            "audit_log bytes/certificate": audit / count}


def ocsp_request(issued: Issued) -> bytes:
    return ocsp.OCSPRequestBuilder().add_certificate(
        issued.certificate, issued.chain[0], hashes.SHA1()).build().public_bytes(
            serialization.Encoding.DER)


def ocsp_revoked(url: str, issued: Issued) -> bool:
    request = urllib.request.Request(f"{url}/ocsp/{CA}", data=ocsp_request(issued),
                                     headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        status = ocsp.load_der_ocsp_response(answer.read()).certificate_status
    return status is ocsp.OCSPCertStatus.REVOKED


class RevocationFlow:
    """Revokes one sampled certificate every `every` seconds on the writer and records how
    long each took to show in the reader node's OCSP answers."""

    def __init__(self, writer: PKI, url: str, victims: list[Issued], every: float = 0.1):
        self._writer, self._url, self._victims, self._every = writer, url, victims, every
        self.visible_after: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RevocationFlow:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        for victim in self._victims:
            if self._stop.is_set():
                return
            self._writer.revocation.revoke(CA, victim.record.serial,
                                           x509.ReasonFlags.key_compromise, "bench")
            committed = time.monotonic()
            while not ocsp_revoked(self._url, victim):
                time.sleep(0.01)
            self.visible_after.append(time.monotonic() - committed)
            self._stop.wait(self._every)


def ocsp_from_replica(settings: Settings, topology: Topology, writer: PKI, sample: list[Issued],
                      work: Path, duration: int) -> dict[str, Any]:
    """wrk against a node reading from the replica, revocations flowing meanwhile."""
    requests = work / "requests.bin"
    targets = sample[: len(sample) // 2]
    victims = [i for i in sample[len(sample) // 2:] if RETIRED not in i.record.subject]
    with requests.open("wb") as out:
        for item in targets:
            der = ocsp_request(item)
            out.write(len(der).to_bytes(2, "big") + der)
    port = free_port()
    os.environ["IOTPKI_DATABASE_READ_URL"] = topology.replica.url
    reader = ServerProcess(settings, port, workers=2)
    try:
        reader.start(timeout=120)
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OCSP_REQUESTS": str(requests), "OCSP_MODE": "post",
               "OCSP_PATH": f"/ocsp/{CA}", "OCSP_CLOSE": "0"}
        measured(wrk_command(url, 16, 3), env, 3)  # warm the node
        with RevocationFlow(writer, url, victims) as flow:
            output, _ = measured(wrk_command(url, 16, duration), env, duration)
        rps, p50, p99 = parse_wrk(output)
    finally:
        reader.stop()
        del os.environ["IOTPKI_DATABASE_READ_URL"]
    shown = flow.visible_after
    return {"OCSP responses/s (replica node, 2 workers, c16)": rps, "OCSP p50": p50,
            "OCSP p99": p99, "revocations during the run": len(shown),
            "revocation visible in OCSP after, median s": statistics.median(shown) if shown
            else None, "revocation visible in OCSP after, max s": max(shown) if shown else None}


def failover(topology: Topology, settings: Settings) -> dict[str, float]:
    nodes = [build_pki(settings, migrate=False) for _ in range(2)]
    storm = IssuanceStorm(nodes, batch=50).start()
    try:
        storm.wait_received_after(0.0, 500)
        topology.kill_primary()
        killed = time.monotonic()
        topology.promote_standby()
        promoted = time.monotonic()
        first = storm.wait_received_after(killed, 1, timeout=120)
    finally:
        storm.stop()
        for node in nodes:
            node.close()
    return {"failover: kill to promoted, s": promoted - killed,
            "failover: kill to first issuance, s": first - killed,
            "failover: certificates received in the storm": len(storm.received)}


class Results(dict[str, Any]):
    """Printed as they come: a run of an hour that fails late still tells what it measured."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        print(f"{name:60s} {value:.3f}" if isinstance(value, float) else f"{name:60s} {value}",
              flush=True)

    def update(self, *others: Any, **values: Any) -> None:  # type: ignore[override]
        for name, value in dict(*others, **values).items():
            self[name] = value


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results = Results()
    results["N"] = args.count
    topology = Topology.create(work / "pg").start()
    try:
        port = free_port()
        settings = Settings(data_dir=work / "data", database_url=topology.multi_host_url(),
                            public_url=f"http://127.0.0.1:{port}")
        writer = build_pki(settings)
        create_demo_hierarchy(writer)
        population = Population(writer, args.batch)
        population.issue(args.batch * 2)  # warm: keys, statements, caches
        results["issuance/s at start (issue_many)"] = population.issue(args.probe)
        started = time.perf_counter()
        population.issue(args.count - population.count - args.probe, progress=True)
        results["fill, s"] = time.perf_counter() - started
        results["issuance/s at N (issue_many)"] = population.issue(args.probe)
        results["hot-path slowdown 0 → N, %"] = 100 * (
            1 - results["issuance/s at N (issue_many)"]
            / results["issuance/s at start (issue_many)"])
        started = time.perf_counter()
        revoked = writer.revocation.revoke_matching(
            CertificateQuery(authority=CA, subject_contains=RETIRED),
            x509.ReasonFlags.cessation_of_operation, "bench").revoked
        results[f"bulk revoke by filter: {revoked} certificates, s"] = (
            time.perf_counter() - started)
        results.update(ocsp_from_replica(settings, topology, writer, population.sample, work,
                                         args.duration))
        results.update({f"list: {k}, ms": v for k, v in listing_latencies(writer).items()})
        results.update(database_size(topology, population.count))
        writer.close()
        results.update(failover(topology, settings))
    finally:
        topology.stop()
    results["load average at the end"] = load_average()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="certificates (N)")
    parser.add_argument("--batch", type=int, default=500, help="requests per issue_many")
    parser.add_argument("--probe", type=int, default=5000,
                        help="certificates issued to measure the rate at 0 and at N")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# scale, PostgreSQL 15 primary + synchronous standby + replica, {machine}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="iotpki-scale-") as tmp:
        os.chmod(tmp, 0o755)  # the PostgreSQL clusters inside run as `postgres`
        results = run(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps({**results, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
