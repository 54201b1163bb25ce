"""Benchmark: sharded CRLs (RFC 5280 §5.2.5) of a CA with many certificates, end to end.

Shards the demo operational CA's CRL by expiry window, issues --certificates real, signed
certificates through `issue_many` (a pool of distinct CSRs reused; notAfter spread evenly
over the profile's year, as a fleet renewed continuously has), revokes --revoked of them
(a fraction), then builds every shard's full and delta CRL through the nodes' lease
rounds (`CRLShardBuilds.run_once`) and reports the shard count, the largest shard's CRL,
the build times, and what a delta after a few more revocations costs.

    python bench/crl_shards.py --certificates 100000 --revoked 0.01 --window 7d \
        [--revoke-expiring 30d] [--database-url postgresql+psycopg://...] [--json out.json]

`run_shard_bench(pki, ...)` is the same measurement on a PKI someone else filled (for
bench/scale.py): it reads the shards registered in the store.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.*

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import timedelta
from typing import Any

from cryptography import x509

from bench.crl import private_schema
from bench.issuance import make_csrs
from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ca.profile import parse_duration
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.crl_shards import CRLShardBuilds
from iotpki.core.revocation.status import CRLKind, PublishedCRL
from iotpki.settings import Settings

CA = "operatorco-operations"
BATCH = 500
CSR_POOL = 1000


def issue(pki: PKI, count: int, lifetime: timedelta) -> list[int]:
    """`count` certificates, notAfter spread evenly over `lifetime`; their serials."""
    csrs = make_csrs(min(count, CSR_POOL))
    now = pki.clock.now()
    serials: list[int] = []
    for start in range(0, count, BATCH):
        requests = [IssuanceRequest(
            CA, "operational", csrs[i % len(csrs)], "bench",
            not_after=now + timedelta(hours=1) + (lifetime - timedelta(hours=2)) * i / count)
            for i in range(start, min(count, start + BATCH))]
        for outcome in pki.issuance.issue_many(requests):
            assert isinstance(outcome, Issued), outcome
            serials.append(outcome.record.serial)
    return serials


def revoke(pki: PKI, serials: list[int], authority: str = CA) -> None:
    for serial in serials:
        pki.revocation.revoke(authority, serial, x509.ReasonFlags.key_compromise, "bench")


def run_shard_bench(pki: PKI, more_revocations: list[int],
                    authority: str = CA) -> dict[str, Any]:
    """Build every live shard once (one node), then the deltas after `more_revocations`
    (serials of `authority`)."""
    node = CRLShardBuilds(pki.database.unit_of_work, pki.crls, pki.clock, "bench")
    started = time.perf_counter()
    built = node.run_once()
    all_seconds = time.perf_counter() - started
    fulls = [c for c in built if c.info.kind is CRLKind.FULL]
    largest = max(fulls, key=lambda c: len(c.der))
    per_shard = _per_shard_seconds(pki, fulls)
    revoke(pki, more_revocations, authority)
    time.sleep(pki.crls.policy.debounce.total_seconds())  # deltas are debounced
    started = time.perf_counter()
    deltas = [c for c in node.run_once() if c.info.kind is CRLKind.DELTA]
    delta_seconds = time.perf_counter() - started
    entries = [c.info.entries for c in fulls]
    return {
        "shards": len(fulls), "build_all_seconds": round(all_seconds, 2),
        "build_one_full_median_seconds": round(statistics.median(per_shard), 4),
        "largest_shard_bytes": len(largest.der), "largest_shard_entries": largest.info.entries,
        "entries_total": sum(entries), "entries_median": statistics.median(entries),
        "bytes_per_entry": _bytes_per_entry(fulls),
        "delta_round_seconds": round(delta_seconds, 3), "deltas_published": len(deltas),
        "delta_entries": sum(c.info.entries for c in deltas),
    }


def _per_shard_seconds(pki: PKI, fulls: list[PublishedCRL]) -> list[float]:
    """One full CRL of each of up to 20 shards again, timed alone."""
    seconds = []
    for crl in fulls[:20]:
        started = time.perf_counter()
        pki.crls.publish(crl.info.authority, [CRLKind.FULL], crl.info.shard)
        seconds.append(time.perf_counter() - started)
    return seconds


def _bytes_per_entry(fulls: list[PublishedCRL]) -> float:
    """The slope of CRL size over entries (the frame and signature are the intercept)."""
    small, large = min(fulls, key=lambda c: c.info.entries), max(fulls,
                                                                 key=lambda c: c.info.entries)
    if large.info.entries == small.info.entries:
        return 0.0
    return round((len(large.der) - len(small.der)) / (large.info.entries - small.info.entries), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--revoked", type=float, default=0.01, help="fraction revoked")
    parser.add_argument("--window", default="7d", help="CRL shard window")
    parser.add_argument("--revoke-expiring", default=None, help="also revoke, in one bulk "
                        "revocation, every certificate expiring within this (e.g. 30d): "
                        "the worst case, shards whose every certificate is revoked")
    parser.add_argument("--database-url", default=os.environ.get("IOTPKI_DATABASE_URL"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp, private_schema(args.database_url) as url:
        settings = Settings(data_dir=Path(tmp), database_url=url,
                            public_url="http://127.0.0.1:8080")
        setup = build_pki(settings)
        create_demo_hierarchy(setup)
        setup.authorities.set_crl_sharding(CA, parse_duration(args.window), "bench")
        setup.close()
        pki = build_pki(settings, migrate=False)  # a node started after the setting
        try:
            results = measure(pki, args)
        finally:
            pki.close()
    print(json.dumps(results, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def measure(pki: PKI, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    serials = issue(pki, args.certificates, pki.profiles["operational"].validity)
    issue_seconds = time.perf_counter() - started
    rng = random.Random(20)
    # The 10 revoked after the first build: among the latest to expire, which
    # --revoke-expiring never reaches.
    later = rng.sample(serials[len(serials) // 2:], 10)
    chosen = rng.sample(sorted(set(serials) - set(later)), int(len(serials) * args.revoked))
    started = time.perf_counter()
    revoke(pki, chosen)
    revoke_seconds = time.perf_counter() - started
    bulk = 0
    if args.revoke_expiring is not None:
        bulk = pki.revocation.revoke_matching(CertificateQuery(
            authority=CA, expires_before=pki.clock.now() + parse_duration(args.revoke_expiring),
            limit=None), x509.ReasonFlags.cessation_of_operation, "bench").revoked
    return {"database": pki.database.dialect, "certificates": args.certificates,
            "revoked": len(chosen), "window": args.window,
            "bulk_revoked_expiring": [args.revoke_expiring, bulk],
            "issue_seconds": round(issue_seconds, 1),
            "revoke_seconds": round(revoke_seconds, 1),
            **run_shard_bench(pki, later)}


if __name__ == "__main__":
    main()
