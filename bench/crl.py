"""Benchmark: publishing a full CRL with many entries (RFC 5280 §5), end to end.

Fills the certificates table of the demo operational CA with N revoked rows (bulk insert:
serial, revocation time, reason; the DER column holds a placeholder because the CRL
reads only the index columns), then times `CRLPublisher.publish` (read the index, encode
the entries in one pass, sign, store) and its phases. Median of --runs.

    python bench/crl.py --entries 1000000 [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, bench.*

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select, text

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.revocation.status import CRLKind
from iotpki.settings import Settings
from iotpki.store.schema import authorities, certificates
from iotpki.wire.crl import encode_revoked_certificates

CA = "operatorco-operations"
REASONS = ["keyCompromise", "cessationOfOperation", "superseded", "affiliationChanged",
           "certificateHold", None]


def fill(pki: PKI, count: int, chunk: int = 20_000) -> float:
    """Insert `count` revoked certificates; returns seconds taken."""
    started = time.perf_counter()
    rng = random.Random(7)
    now = datetime.now(UTC)
    with pki.database.engine.begin() as conn:
        authority_id = conn.execute(
            select(authorities.c.id).where(authorities.c.label == CA)).scalar_one()
        for offset in range(0, count, chunk):
            conn.execute(certificates.insert(), [_row(authority_id, offset + i, rng, now)
                                                 for i in range(min(chunk, count - offset))])
    return time.perf_counter() - started


def _row(authority_id: int, index: int, rng: random.Random, now: datetime) -> dict[str, object]:
    serial = format(rng.getrandbits(127) | (1 << 100), "x")
    reason = rng.choice(REASONS)
    return {
        "authority_id": authority_id, "serial": serial, "fingerprint": f"{index:064x}",
        "subject": f"CN=bench-{index}", "sans": "", "not_before": now - timedelta(days=30),
        "not_after": now + timedelta(days=335), "profile": "operational",
        "status": "on-hold" if reason == "certificateHold" else "revoked",
        "revoked_at": now - timedelta(seconds=rng.randrange(2_000_000)),
        "revocation_reason": reason, "issued_at": now - timedelta(days=30),
        "der": b"\x30\x00", "status_seq": 1,
    }


def time_phases(pki: PKI) -> dict[str, float]:
    phases: dict[str, float] = {}
    started = time.perf_counter()
    with pki.database.unit_of_work() as uow:
        rows = list(uow.revocation.crl_entries(CA))
    phases["read index (alone)"] = time.perf_counter() - started
    started = time.perf_counter()
    encode_revoked_certificates(rows)
    phases["encode entries (alone)"] = time.perf_counter() - started
    return phases


@contextlib.contextmanager
def private_schema(url: str | None) -> Iterator[str | None]:
    """A PostgreSQL URL whose connections use a fresh schema, dropped afterwards (so the
    benchmark never touches tables others use); SQLite (None) as it is."""
    if url is None or not url.startswith("postgresql"):
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("IOTPKI_DATABASE_URL"))
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp, private_schema(args.database_url) as url:
        pki = build_pki(Settings(data_dir=Path(tmp), database_url=url,
                                 public_url="http://127.0.0.1:8080"))
        try:
            create_demo_hierarchy(pki)
            print(f"database: {pki.database.dialect}; filled {args.entries} revoked rows in "
                  f"{fill(pki, args.entries):.1f} s")
            run(pki, args.runs)
        finally:
            pki.close()


def run(pki: PKI, runs: int) -> None:
    timings, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        published = pki.crls.publish(CA, [CRLKind.FULL])
        timings.append(time.perf_counter() - started)
        size = len(published[0].der)
        entries = published[0].info.entries
    print(f"full CRL: {entries} entries, {size / 1e6:.1f} MB; publish (read + encode + sign + "
          f"store) median {statistics.median(timings):.2f} s of {[round(t, 2) for t in timings]}")
    for phase, seconds in time_phases(pki).items():
        print(f"  {phase}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
