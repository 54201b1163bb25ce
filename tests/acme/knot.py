"""A real authoritative DNS server for dns-01 (Knot DNS, Debian package `knot`) on a loopback
port: zones that accept RFC 2136 updates signed with one TSIG key (RFC 8945), the way
certbot's and lego's rfc2136 plugins publish `_acme-challenge` records."""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iotpki.protocols.acme.dns01 import DNSClient
from iotpki.protocols.acme.validation import ChallengeFailed
from iotpki.wire.dns import TYPE_TXT

KEY_NAME = "acme-update"
ALGORITHM = "hmac-sha256"


@dataclass
class Knot:
    port: int
    directory: Path
    zones: Sequence[str]
    secret: str = ""
    process: subprocess.Popen[bytes] | None = None

    def start(self, knotd: str, timeout: float = 60) -> Knot:
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        (self.directory / "db").mkdir(parents=True, exist_ok=True)
        for zone in self.zones:
            (self.directory / f"{zone}.zone").write_text(
                f"$ORIGIN {zone}.\n$TTL 5\n"
                f"@ SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 5\n"
                f"@ NS ns.{zone}.\nns A 127.0.0.1\n")
        config = self.directory / "knot.conf"
        d = self.directory
        config.write_text(
            f'server:\n    listen: 127.0.0.1@{self.port}\n    rundir: "{d}"\n'
            f'    pidfile: "{d}/knot.pid"\n'
            f'control:\n    listen: "{d}/knot.sock"\n'
            f'database:\n    storage: "{d}/db"\n'
            f'log:\n  - target: "{d}/knot.log"\n    any: info\n'
            f'key:\n  - id: {KEY_NAME}\n    algorithm: {ALGORITHM}\n    secret: {self.secret}\n'
            f'acl:\n  - id: update\n    key: {KEY_NAME}\n    action: update\n'
            'zone:\n' + "".join(
                f'  - domain: {z}\n    storage: "{d}"\n    file: "{z}.zone"\n'
                f'    acl: update\n    zonefile-sync: -1\n' for z in self.zones))
        self.process = subprocess.Popen([knotd, "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        client = DNSClient(("127.0.0.1", self.port), 1.0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.query(f"ns.{self.zones[0]}", TYPE_TXT)
                return self
            except ChallengeFailed:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = (d / "knot.log").read_text() if (d / "knot.log").exists() else ""
                    raise RuntimeError(f"knotd did not start: {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
