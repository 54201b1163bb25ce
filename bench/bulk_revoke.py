"""Benchmark: revoking every certificate a filter matches, in one transaction
(`RevocationService.revoke_matching`, `POST /api/v1/certificates/bulk-revoke`).

Fills the demo operational CA with N good certificates (bulk insert of index rows; the DER
column holds a placeholder because revocation reads only the index columns), then times
one bulk revocation by filter (authority + profile): select the matching rows, update
their status (one statement executed per serial), bump the revocation counter once, chain
one audit entry per certificate and queue one event per certificate, commit. A fresh
database per run; median of --runs.

    python bench/bulk_revoke.py --count 100000 [--api] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.crl import private_schema
from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.integration.principal import Role
from iotpki.settings import Settings
from iotpki.store.schema import audit_log, authorities, certificates

CA = "operatorco-operations"
ORGANIZATION = "operatorco"


def fill(pki: PKI, count: int, chunk: int = 20_000) -> float:
    started = time.perf_counter()
    now = datetime.now(UTC)
    with pki.database.engine.begin() as conn:
        authority_id = conn.execute(
            select(authorities.c.id).where(authorities.c.label == CA)).scalar_one()
        for offset in range(0, count, chunk):
            conn.execute(certificates.insert(), [{
                "authority_id": authority_id, "serial": format((1 << 100) + i, "x"),
                "fingerprint": f"{i:064x}", "subject": f"CN=bench-{i}", "sans": "",
                "not_before": now - timedelta(days=30), "not_after": now + timedelta(days=335),
                "profile": "operational", "status": "good", "issued_at": now - timedelta(days=30),
                "der": b"\x30\x00"} for i in range(offset, min(offset + chunk, count))])
    return time.perf_counter() - started


def revoke_in_core(pki: PKI) -> int:
    result = pki.revocation.revoke_matching(
        CertificateQuery(authority=CA, profile="operational", organization=ORGANIZATION),
        x509.ReasonFlags.cessation_of_operation, "bench")
    return result.revoked


def revoke_over_api(pki: PKI) -> int:
    from tests.api.conftest import APIClient  # the in-process ASGI client of the test suite

    from iotpki.app import api_services
    from iotpki.protocols.rest.app import create_api

    key = pki.principals.create_api_key(ORGANIZATION, Role.OPERATOR, "bench", "bench").api_key
    client = APIClient(create_api(api_services(pki)))
    try:
        response = client.post("/api/v1/certificates/bulk-revoke", key, json={
            "filter": {"authority": CA, "profile": "operational"},
            "reason": "cessationOfOperation"})
        response.raise_for_status()
        return int(response.json()["revoked"])
    finally:
        client.close()


def one_run(count: int, url: str | None, api: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_pki(Settings(data_dir=Path(tmp), database_url=url,
                                 public_url="http://127.0.0.1:8080"))
        try:
            create_demo_hierarchy(pki)
            filled = fill(pki, count)
            started, cpu = time.perf_counter(), time.process_time()
            revoked = revoke_over_api(pki) if api else revoke_in_core(pki)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            _check(pki, count, revoked)
            print(f"  filled {count} in {filled:.1f} s; revoked {revoked} in {elapsed:.2f} s "
                  f"({revoked / elapsed:,.0f} /s; this process used {cpu:.2f} s of CPU; "
                  f"load average {os.getloadavg()[0]:.1f})")
            return elapsed
        finally:
            pki.close()


def _check(pki: PKI, count: int, revoked: int) -> None:
    with pki.database.engine.connect() as conn:
        still_good = conn.execute(select(func.count()).select_from(certificates).where(
            certificates.c.status == "good", certificates.c.profile == "operational")).scalar()
        audited = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.action == "certificate.revoke")).scalar()
    assert revoked == count and still_good == 0 and audited == count, (revoked, still_good,
                                                                        audited)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--api", action="store_true", help="through the REST API (in process)")
    parser.add_argument("--database-url", default=os.environ.get("IOTPKI_DATABASE_URL"))
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    timings = []
    with private_schema(args.database_url) as url:
        print(f"bulk revoke of {args.count} certificates by filter, "
              f"{'REST API' if args.api else 'core'}, "
              f"{'PostgreSQL' if url and url.startswith('postgresql') else 'SQLite'}")
        for _ in range(args.runs):
            timings.append(one_run(args.count, url, args.api))
    median = statistics.median(timings)
    print(f"median {median:.2f} s ({args.count / median:,.0f} certificates/s) of "
          f"{[round(t, 2) for t in timings]}")


if __name__ == "__main__":
    main()
