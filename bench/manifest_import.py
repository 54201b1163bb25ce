"""Bulk manifest import: N entries verified and registered in one transaction.

    python bench/manifest_import.py --entries 1000000
    python bench/manifest_import.py --entries 100000 --database-url postgresql+psycopg://...

The manifest is a real CMS SignedData from ChipCo's manifest signer; its entries are
synthetic identities (random fingerprints and serials), since importing does not need
the certificates themselves. Reports the wall time of `ManifestService.import_manifest`
(signature check, JSON decode, chain validation, registrations, one commit) and of
signing the manifest, with the machine noted.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.clock import SystemClock
from iotpki.core.supply_chain.manifests import ImportTarget
from iotpki.settings import Settings
from iotpki.wire.manifest import Manifest, ManifestEntry, encode_manifest, sign_manifest


def synthetic_manifest(entries: int) -> Manifest:
    now = SystemClock().now()
    issuer = "CN=ChipCo Component CA,O=ChipCo"
    return Manifest(
        delivery_id=f"bench-{secrets.token_hex(4)}", sender="chipco", recipient="deviceco",
        issued_at=now, expires_at=now + timedelta(days=1),
        entries=tuple(ManifestEntry(secrets.token_hex(32), issuer, secrets.token_hex(16),
                                    f"chip-{i:07d}", {"lot": "L42"}) for i in range(entries)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "benchmark passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_pki(Settings(Path(tmp), args.database_url, public_url="http://pki.example:8080"))
        create_demo_hierarchy(pki)
        key, signer, chain = pki.manifests.signer("chipco", "bench")
        manifest = synthetic_manifest(args.entries)
        start = time.perf_counter()
        signed = sign_manifest(encode_manifest(manifest), signer, key, chain)
        sign_seconds = time.perf_counter() - start
        target = ImportTarget("deviceco-devices", "device")
        start = time.perf_counter()
        result = pki.manifests.import_manifest("deviceco", signed, target, "bench")
        import_seconds = time.perf_counter() - start
        pki.close()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"# manifest import, {result.entries} entries, {len(signed) / 1e6:.1f} MB CMS, {machine}")
    print(f"encode + sign      {sign_seconds:8.2f} s")
    print(f"import (one txn)   {import_seconds:8.2f} s   {result.entries / import_seconds:9.0f} entries/s")


if __name__ == "__main__":
    main()
