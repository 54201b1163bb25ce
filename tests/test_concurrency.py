"""Several processes issuing against one database: unique serials, no lost record, an
intact audit chain (SQLite serializes writers with BEGIN IMMEDIATE; PostgreSQL with the
audit head row lock)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from sqlalchemy import text

from iotpki.app import PKI, build_pki
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from tests.factories import domain_uri, make_csr

PROCESSES = 4
PER_PROCESS = 40


def _issue_many(settings: Settings, passphrase: str, worker: int) -> int:
    os.environ["IOTPKI_CA_PASSPHRASE"] = passphrase
    pki = build_pki(settings, migrate=False)
    csr, _ = make_csr(f"sensor-{worker}", [domain_uri("building-42.operator.example")])
    issued = 0
    for _ in range(PER_PROCESS):
        outcome = pki.issuance.issue(
            IssuanceRequest("operatorco-operations", "operational", csr, f"worker-{worker}"))
        issued += isinstance(outcome, Issued)
    pki.close()
    return issued


def test_concurrent_processes_lose_nothing(demo_pki: PKI, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    args = [(demo_pki.settings, os.environ["IOTPKI_CA_PASSPHRASE"], w) for w in range(PROCESSES)]
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(_issue_many, args, chunksize=1)
    assert results == [PER_PROCESS] * PROCESSES
    with demo_pki.database.engine.connect() as conn:
        rows = conn.execute(text("SELECT serial FROM certificates")).all()
        issued_entries = conn.execute(text(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.issue'")).scalar()
    assert len(rows) == len({r[0] for r in rows}) == PROCESSES * PER_PROCESS
    assert issued_entries == PROCESSES * PER_PROCESS
    checked, problems = demo_pki.audit.problems()
    assert problems == [] and checked == 12 + PROCESSES * PER_PROCESS
