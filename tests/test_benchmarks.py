"""The benchmark scripts still run (tiny sizes, no timing asserted: numbers live in docs/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("args", [
    ["issuance.py", "--count", "20", "--batch", "5", "--repeat", "1"],
    ["issuance.py", "--count", "20", "--batch", "5", "--repeat", "1", "--key-backend", "pkcs11"],
    ["manifest_import.py", "--entries", "200"],
    ["bulk_revoke.py", "--count", "1500", "--runs", "1"],
    ["bulk_revoke.py", "--count", "300", "--runs", "1", "--api"],
    ["fleet.py", "--devices", "5", "--concurrency", "2", "--workers", "1", "--quiet"],
])
def test_benchmark_script_runs(args: list[str]) -> None:
    run = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "/s" in run.stdout
