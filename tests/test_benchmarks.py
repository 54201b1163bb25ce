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
    # Every bench's set-up, tiny: a bench whose population cannot be prepared fails here.
    ["ocsp.py", "--certificates", "12", "--workers", "1", "--runs", "1", "--duration", "1",
     "--connections", "2", "--settle", "0", "--skip-openssl"],
    ["est.py", "--workers", "1", "--connections", "2", "--duration", "1", "--warmup", "2",
     "--repeat", "1", "--devices", "6", "--in-process", "5"],
    ["est_cpu.py", "--devices", "4", "--warmup", "2"],
    ["cmp.py", "--workers", "1", "--loaders", "1", "--threads", "2", "--duration", "1",
     "--runs", "1", "--requests", "6", "--in-process", "5"],
    ["scep.py", "--workers", "1", "--loaders", "1", "--threads", "2", "--duration", "1",
     "--runs", "1", "--requests", "6", "--keys", "2", "--in-process", "5"],
    ["acme.py", "--workers", "1", "--loaders", "1", "--threads", "2", "--duration", "1",
     "--runs", "1", "--requests", "6", "--in-process", "5"],
    ["crl.py", "--entries", "300", "--runs", "1"],
    ["crl_shards.py", "--certificates", "100", "--revoked", "0.05", "--window", "90d"],
    ["cli.py", "--runs", "1", "--certs", "2"],
    ["console.py", "--certificates", "40", "--devices", "8", "--batch", "10", "--repeat", "1"],
])
def test_benchmark_script_runs(args: list[str]) -> None:
    run = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert {"crl.py": "full CRL", "cli.py": "CPU min",
            "crl_shards.py": "largest_shard_bytes",
            "console.py": "ms median", "est_cpu.py": "CPU per renewal"}.get(args[0], "/s") \
        in run.stdout


def test_cmp_cpu_benchmark_runs(tmp_path: Path) -> None:
    """bench/cmp_cpu.py in its two steps: the population prepared, then requests posted
    (and cProfiled) through the in-process application."""
    script = str(BENCH / "cmp_cpu.py")
    prepared = subprocess.run([sys.executable, script, "prepare", str(tmp_path), "--devices", "3"],
                              capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    for extra in ([], ["--profile", str(tmp_path / "cmp.prof")]):
        run = subprocess.run([sys.executable, script, "run", str(tmp_path), "--devices", "3",
                              "--post", "2", *extra], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert "2 accepted of 2" in run.stdout
    assert (tmp_path / "cmp.prof").stat().st_size > 0
