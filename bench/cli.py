"""Benchmark: how long the `iotpki` command takes to start, for `--help`, `cert list` and
`cert show`.

Each command runs as a fresh process (`python -m iotpki.cli.main`) on a demo data directory
with --certs certificates; the figure is the process's CPU time (user + system, from
`os.wait4`), which a busy machine inflates less than wall time; both are reported, the
minimum and median of --runs, with the load average before and after. Targets (issue 22):
`--help` ≤ 0.3 s, `cert list` ≤ 0.6 s. The processes may write bytecode (as an installed
package has it) even if PYTHONDONTWRITEBYTECODE is set here: the first, unmeasured run
writes it. To compare another checkout, run with PYTHONPATH=<its src>.

    python bench/cli.py [--runs 10] [--certs 100]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, bench.*

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings

COMMANDS = {"--help": ["--help"], "cert list": ["cert", "list"],
            "cert list --json": ["cert", "list", "--json"],
            "cert show": ["cert", "show", "deviceco-devices", "<serial>"]}
TARGETS = {"--help": 0.3, "cert list": 0.6}


def prepare(data_dir: Path, count: int) -> str:
    """A demo data directory with `count` device certificates; the serial of the last."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    settings = Settings(data_dir=data_dir, allow_unencrypted_keys=True)
    pki = build_pki(settings)
    create_demo_hierarchy(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "bench")])).sign(key, hashes.SHA256())
    der = csr.public_bytes(Encoding.DER)
    outcomes = pki.issuance.issue_many([IssuanceRequest("deviceco-devices", "device", der,
                                                        "bench") for _ in range(count)])
    pki.close()
    last = outcomes[-1]
    assert isinstance(last, Issued), last
    return last.record.serial_hex


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one `iotpki` process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "iotpki.cli.main", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"iotpki {' '.join(args)} failed: {process.stderr.read().decode()}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--certs", type=int, default=100)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        serial = prepare(data_dir, options.certs)
        env = {**os.environ, "IOTPKI_DATA_DIR": str(data_dir),
               "IOTPKI_INSECURE_UNENCRYPTED_KEYS": "1", "COLUMNS": "200"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for args in COMMANDS.values():  # warm the page cache and write the bytecode
            run_once([serial if a == "<serial>" else a for a in args], env)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
              f"{options.certs} certificates, {options.runs} runs")
        for name, args in COMMANDS.items():
            args = [serial if a == "<serial>" else a for a in args]
            samples = [run_once(args, env) for _ in range(options.runs)]
            cpu = [s[0] for s in samples]
            wall = [s[1] for s in samples]
            target = f" (target ≤ {TARGETS[name]} s)" if name in TARGETS else ""
            print(f"iotpki {name:18} CPU min {min(cpu):.3f} s, median {statistics.median(cpu):.3f}"
                  f" s; wall min {min(wall):.3f} s, median {statistics.median(wall):.3f} s"
                  f"{target}; {1 / min(cpu):.1f} runs/s")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
