"""Benchmark: a fleet of N virtual devices enrolls and renews once (`iotpki fleet simulate`)
against `iotpki serve --workers W`.

Method: a fresh demo PKI in a temporary data directory (SQLite, or --database-url); the
server in a child process; N one-time-secret registrations created in batches of 500
through the core; C threads each drive virtual agents (`iotpki.agent`: scheduler, CMP or
EST client): enroll (ir MAC-protected / EST simpleenroll with HTTP Basic), jump the
scheduler's clock to the drawn renewal time, renew (kur signed / EST simplereenroll).
Prints the report as JSON (successes, failures, latencies, devices/s).

    python bench/fleet.py [--devices 10000] [--protocol cmp] [--concurrency 8] [--workers 2]
                          [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from tests.est.conftest import free_port, start_server, write_trust_files

from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.cli.fleet import FleetOptions, simulate
from iotpki.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--protocol", choices=["cmp", "est"], default="cmp")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "bench passphrase, not a secret")
    with tempfile.TemporaryDirectory() as tmp:
        ports = (free_port(), free_port())
        settings = Settings(Path(tmp) / "data", args.database_url, f"http://127.0.0.1:{ports[0]}")
        pki = build_pki(settings)
        create_demo_hierarchy(pki)
        client = Path(tmp) / "client"
        client.mkdir()
        write_trust_files(pki, client)
        server = start_server(pki, settings, ports, client,
                              extra=("--workers", str(args.workers)))
        try:
            url = (f"http://127.0.0.1:{ports[0]}/.well-known/cmp" if args.protocol == "cmp"
                   else f"https://127.0.0.1:{ports[1]}")
            report = simulate(pki, FleetOptions(args.devices, url, args.protocol,
                                                args.concurrency, seed=1),
                              show_progress=not args.quiet)
        finally:
            server.stop()
            pki.close()
    print(json.dumps({**report.__dict__, "workers": args.workers,
                      "concurrency": args.concurrency,
                      "database": "postgresql" if args.database_url else "sqlite"}, indent=2))


if __name__ == "__main__":
    main()
