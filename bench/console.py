"""Benchmark: server time per web console page (`/console/`, issue 18) with a large store.

Method: a fresh demo PKI (SQLite in a temporary directory, or --database-url); OperatorCo's
issuing CA issues --certificates operational certificates through `issue_many` in batches
(a pool of 256 CSR keys, each certificate with its own subject and a notAfter spread over
the next 400 days, so the forecast has something to count); a share of them is put on hold
or revoked; --devices devices are recorded with their identities linked (the certificates
shared out evenly, one supplier component each). Then the HTTPS listener's application
(`app.https_app`) runs in process over httpx's ASGI transport, an admin logs in, and every
page is requested --repeat times after one warm-up request: the figure is the time from
request to complete response, which is server time (no socket, no browser). Prints one line
per page (median and max, ms) and the population it measured.

    python bench/console.py [--certificates 100000] [--devices 10000] [--repeat 5]
                            [--batch 500] [--database-url postgresql+psycopg://...]
                            [--data-dir DIR [--reuse]] [--unique-keys]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` for the ASGI client

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tests.console.conftest import ConsoleClient

from iotpki.app import PKI, build_pki, https_app
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.integration.principal import Role
from iotpki.core.lifecycle.device import Device, DeviceState
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.wire.keys import generate_private_key

CA, ORGANIZATION = "operatorco-operations", "operatorco"
DOMAIN = "urn:iotpki:domain:building-42.operator.example"
KEYS = 256


def new_csr(n: int) -> bytes:
    key = generate_private_key("ec-p256")
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(x509.NameOID.COMMON_NAME, f"pool-{n}")])).sign(
        key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def csr_pool() -> list[bytes]:
    return [new_csr(n) for n in range(KEYS)]


class DeviceKeys:
    """--unique-keys: certificate n is on the key of the device it will be linked to
    (`populate_devices` gives device k certificates k*share .. (k+1)*share - 1), so each
    device renews on a key of its own, held by no other device. Made as they are needed."""

    def __init__(self, share: int) -> None:
        self._share, self._device, self._csr = share, -1, b""

    def __getitem__(self, n: int) -> bytes:
        if n // self._share != self._device:
            self._device = n // self._share
            self._csr = new_csr(self._device)
        return self._csr


def populate_certificates(pki: PKI, count: int, batch: int,
                          unique_share: int | None = None) -> list[Any]:
    """`count` operational certificates; returns their records in issue order. The keys:
    256 pooled ones, or (`unique_share`) one per group of that many certificates."""
    pool: Any = DeviceKeys(unique_share) if unique_share else csr_pool()
    now, rng = pki.clock.now(), random.Random(1)
    sans = (x509.UniformResourceIdentifier(DOMAIN),)
    records: list[Any] = []
    started = time.perf_counter()
    for first in range(0, count, batch):
        requests = [IssuanceRequest(
            CA, "operational", pool[n] if unique_share else pool[n % KEYS], "bench",
            subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"sensor-{n:07d}")]),
            sans=sans, not_after=now + timedelta(days=rng.uniform(1, 360)))
            for n in range(first, min(first + batch, count))]
        for outcome in pki.issuance.issue_many(requests):
            assert isinstance(outcome, Issued), outcome
            records.append(outcome.record)
        done = len(records)
        rate = done / (time.perf_counter() - started)
        print(f"\r{done}/{count} certificates ({rate:.0f}/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    return records


def change_statuses(pki: PKI, records: list[Any]) -> None:
    """One in 200 on hold, one in 100 revoked (each one transaction, as an operator would)."""
    for n, record in enumerate(records):
        if n % 200 == 7:
            pki.revocation.revoke(record.authority, record.serial,
                                  x509.ReasonFlags.certificate_hold, "bench")
        elif n % 100 == 3:
            pki.revocation.revoke(record.authority, record.serial,
                                  x509.ReasonFlags.key_compromise, "bench")


def populate_devices(pki: PKI, records: list[Any], count: int) -> list[str]:
    """`count` devices, the certificates shared out among them (operational identities), one
    supplier component each; one in 100 lost."""
    now, ids = pki.clock.now(), []
    share = max(1, len(records) // max(count, 1))
    for first in range(0, count, 1000):
        with pki.database.unit_of_work() as uow:
            for n in range(first, min(first + 1000, count)):
                component = os.urandom(32).hex()
                device = Device(str(uuid.uuid4()), ORGANIZATION, f"device-{n:07d}", (component,),
                                bytes.fromhex(component), now + timedelta(microseconds=n),
                                DeviceState.LOST if n % 100 == 5 else DeviceState.ACTIVE,
                                ORGANIZATION, now)
                uow.devices.add(device)
                for record in records[n * share:(n + 1) * share]:
                    uow.devices.link(device.id, record.fingerprint, "operational", now)
                ids.append(device.id)
            uow.commit()
    return ids


def timed(client: ConsoleClient, path: str, repeat: int, **params: str) -> dict[str, Any]:
    """Wall time per request, and the CPU time this process spent on it (client and server
    share the process; the client's part is small): on a loaded machine the CPU time is the
    steadier figure."""
    answer = client.get(path, params=params)  # warm-up: caches, statements
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        answer = client.get(path, params=params)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert answer.status_code == 200
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
            "cpu_median_ms": round(statistics.median(cpu), 1)}


def samples(records: list[Any], devices: list[str]) -> dict[str, str]:
    """What the pages ask about: the middle certificate, the last subject, a device."""
    middle = records[len(records) // 2]
    return {"authority": middle.authority, "serial_hex": middle.serial_hex,
            "last_cn": records[-1].subject.removeprefix("CN="),
            "device": devices[len(devices) // 2]}


def measure(pki: PKI, sample: dict[str, str], repeat: int) -> dict[str, Any]:
    key = pki.principals.create_api_key(ORGANIZATION, Role.ADMIN, "bench", "bench").api_key
    assert key is not None
    client = ConsoleClient(https_app(pki))
    try:
        client.login(key)
        deep = client.get("/console/devices").text  # a cursor from the first page's link
        pages = {
            "fleet overview": ("/console/", {}),
            "devices, first page": ("/console/devices", {}),
            "devices, next page": ("/console/devices", {
                "cursor": deep.split("cursor=")[1].split('"')[0]} if "cursor=" in deep else {}),
            "devices, state lost": ("/console/devices", {"state": "lost"}),
            "devices, profile + domain": ("/console/devices", {
                "profile": "operational", "domain": "building-42.operator.example"}),
            "devices, expiring before +30 days": ("/console/devices", {
                "expiring_before": (pki.clock.now() + timedelta(days=30)).strftime("%Y-%m-%d")}),
            "devices, search serial": ("/console/devices", {"search": sample["serial_hex"]}),
            "devices, search CN (last issued)": ("/console/devices", {
                "search": sample["last_cn"]}),
            "devices, search matching nothing": ("/console/devices", {"search": "no-such-x"}),
            "device page (timeline)": (f"/console/devices/{sample['device']}", {}),
            "certificate page (live OCSP)": (
                f"/console/certificates/{sample['authority']}/{sample['serial_hex']}", {}),
            "authorities": ("/console/authorities", {}),
            "revocation center (CRLs, live OCSP)": ("/console/revocation", {}),
            "bulk revocation count, one subject": ("/console/revocation/bulk", {
                # The bulk filter's subject is the subject's beginning, attribute included.
                "subject": f"CN={sample['last_cn']}", "reason": "superseded"}),
            "bulk revocation count, whole profile": ("/console/revocation/bulk", {
                "profile": "operational", "reason": "superseded"}),
            "posture checks": ("/console/posture", {}),
            "integrations": ("/console/integrations", {}),
            "enrollment (endpoints, registrations, manifests)": ("/console/enrollment", {}),
        }
        return {name: timed(client, path, repeat, **params)
                for name, (path, params) in pages.items()}
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url")
    parser.add_argument("--data-dir", type=Path, help="keep the store here (default: a temp dir)")
    parser.add_argument("--unique-keys", action="store_true",
                        help="each device's certificates on a key of its own (renewals keep "
                             "the key; no key on two devices) instead of 256 pooled keys")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the store --data-dir kept from an earlier run (upgraded "
                             "by the migrations), without populating it again")
    args = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "bench passphrase, not a secret")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        kept = data_dir / "bench-console.json"  # the population's sample, for --reuse
        settings = Settings(data_dir, args.database_url,
                            public_url="http://pki.example:8080", allow_unencrypted_keys=True)
        pki = build_pki(settings)
        try:
            populated = 0.0
            if args.reuse:
                sample = json.loads(kept.read_text())
            else:
                create_demo_hierarchy(pki)
                started = time.perf_counter()
                records = populate_certificates(
                    pki, args.certificates, args.batch,
                    max(1, args.certificates // max(args.devices, 1)) if args.unique_keys
                    else None)
                change_statuses(pki, records)
                devices = populate_devices(pki, records, args.devices)
                populated = time.perf_counter() - started
                sample = samples(records, devices)
                kept.write_text(json.dumps(sample))
            results = measure(pki, sample, args.repeat)
        finally:
            pki.close()
    report = {"database": "postgresql" if args.database_url else "sqlite",
              "certificates": args.certificates, "devices": args.devices,
              "populate_seconds": round(populated), "load": os.getloadavg(), "pages": results}
    print(json.dumps(report, indent=2))
    for name, figures in results.items():
        print(f"{name}: {figures['median_ms']} ms median, {figures['max_ms']} ms max, "
              f"{figures['cpu_median_ms']} ms CPU")


if __name__ == "__main__":
    main()
