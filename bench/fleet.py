"""Benchmark: a fleet of N virtual devices enrolls and renews once (`iotpki fleet simulate`)
against `iotpki serve --workers W`.

Method: a fresh demo PKI in a temporary data directory (SQLite, or --database-url); the
server in a child process; an API key of an OperatorCo registrar; N one-time-secret
registrations created in batches of 500 through the REST API (as `iotpki fleet simulate
--url --api-key` does against any deployment); C threads each drive virtual agents
(`iotpki.agent`: scheduler, CMP or EST client): enroll (ir MAC-protected / EST
simpleenroll with HTTP Basic), jump the scheduler's clock to the drawn renewal time,
renew (kur signed / EST simplereenroll). Prints the report as JSON (successes, failures,
latencies, devices/s).

    python bench/fleet.py [--devices 10000] [--protocol cmp] [--concurrency 8] [--workers 2]
                          [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from iotpki.app import build_pki, install_default_profiles
from iotpki.cli.demo_broker import PKIServer, free_port
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.cli.fleet import FleetOptions, simulate
from iotpki.core.integration.principal import Role
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
        server = PKIServer(Path(tmp) / "data", free_port(), free_port(), args.database_url,
                           args.workers)
        settings = Settings(server.data_dir, args.database_url, public_url=server.http_url)
        install_default_profiles(settings)
        pki = build_pki(settings)
        create_demo_hierarchy(pki)
        key = pki.principals.create_api_key("operatorco", Role.REGISTRAR, "fleet bench",
                                            "bench").api_key
        assert key is not None
        server.start()
        try:
            report = simulate(FleetOptions(
                args.devices, server.https_url, key, args.protocol, args.concurrency,
                tls_ca=server.data_dir / "tls" / "client-cas.pem", seed=1),
                show_progress=not args.quiet)
        finally:
            server.stop()
            pki.close()
    print(json.dumps({**report.__dict__, "workers": args.workers,
                      "concurrency": args.concurrency,
                      "database": "postgresql" if args.database_url else "sqlite"}, indent=2))
    print(f"{report.succeeded}/{report.devices} devices enrolled and renewed, {report.failed} "
          f"failed: {report.devices_per_second} devices/s")


if __name__ == "__main__":
    main()
