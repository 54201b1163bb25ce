"""The processes the demo starts on free loopback ports: an `iotpki serve` and a Mosquitto
broker (TLS, `require_certificate true`, `use_identity_as_username`, our CRL, an ACL file).
Never the machine's own broker: each gets its own port, directory and process.

A new CRL is put in force with SIGHUP: Mosquitto 2.0 (2.0.11 here) re-reads the listener's
TLS files, `crlfile` included, on SIGHUP; the broker keeps running and a client whose
certificate the new CRL lists fails the next handshake ("certificate verify failed").
The demo test checks that the broker process is the same before and after.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from iotpki.wire.errors import PKIError


class DemoError(PKIError):
    """A demo step whose outcome is not what the story says."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path,
                   timeout: float = 240) -> None:  # minutes on a loaded machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"process exited: {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise DemoError(f"nothing listens on port {port} after {timeout} s: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class PKIServer:
    """`iotpki serve` for the demo's data directory."""

    data_dir: Path
    http_port: int
    https_port: int
    database_url: str | None = None
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def start(self) -> None:
        log = self.data_dir / "server.log"
        command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(self.data_dir),
                   "--public-url", self.http_url]
        if self.database_url:
            command += ["--database-url", self.database_url]
        command += ["serve", "--http-port", str(self.http_port), "--https-port",
                    str(self.https_port), "--workers", str(self.workers)]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with log.open("wb") as sink:
            self.process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                                            stderr=sink)
        for port in (self.http_port, self.https_port):
            wait_listening(port, self.process, log)

    def stop(self) -> None:
        stop(self.process)


@dataclass
class Broker:
    """A private Mosquitto with mutual TLS, our CRL and an ACL file."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def configure(self, ca_file: Path, cert_file: Path, key_file: Path, crl_file: Path,
                  acl: Mapping[str, Sequence[str]]) -> Path:
        """`acl`: username (the certificate's CN) → topic patterns it may read and write."""
        acl_file = self.directory / "acl"
        acl_file.write_text("".join(
            f"user {user}\n" + "".join(f"topic readwrite {t}\n" for t in topics) + "\n"
            for user, topics in acl.items()))
        config = self.directory / "mosquitto.conf"
        config.write_text("\n".join((
            # started as root, Mosquitto would switch to user "mosquitto", who cannot read
            # our 0600 key: keep the user that runs the demo
            f"user {getpass.getuser()}",
            "per_listener_settings false", "persistence false", "log_dest stderr",
            "log_type error", "log_type warning", "log_type notice",
            f"acl_file {acl_file}",
            f"listener {self.port} 127.0.0.1",
            f"cafile {ca_file}", f"certfile {cert_file}", f"keyfile {key_file}",
            f"crlfile {crl_file}", "require_certificate true", "use_identity_as_username true",
            "tls_version tlsv1.2", "")))
        return config

    def start(self) -> None:
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = self.directory / "mosquitto.log"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [executable, "-c", str(self.directory / "mosquitto.conf")],
                stdout=sink, stderr=sink)
        wait_listening(self.port, self.process, log)

    def reload(self) -> None:
        """SIGHUP: re-read the configuration and the TLS files (the CRL among them)."""
        if self.process is None or self.process.poll() is not None:
            raise DemoError("the broker is not running")
        self.process.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # Mosquitto handles the signal in its main loop

    def stop(self) -> None:
        stop(self.process)


@dataclass(frozen=True)
class Client:
    """A device's files for the Mosquitto command-line clients."""

    name: str
    cert_file: Path  # leaf + intermediates
    key_file: Path


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str


def _tls_arguments(broker: Broker, client: Client, ca_file: Path) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(broker.port), "--cafile", str(ca_file),
            "--cert", str(client.cert_file), "--key", str(client.key_file),
            "-V", "mqttv5", "-i", f"{client.name}-{os.getpid()}-{time.monotonic_ns() % 10**6}"]


def publish(broker: Broker, client: Client, ca_file: Path, topic: str,
            message: str) -> Outcome:
    """QoS 1 so that MQTT 5 reports a refusal (PUBACK "not authorized") to the client."""
    done = subprocess.run(
        ["mosquitto_pub", *_tls_arguments(broker, client, ca_file), "-q", "1", "-t", topic,
         "-m", message], capture_output=True, text=True, timeout=30, check=False)
    output = (done.stdout + done.stderr).strip()
    return Outcome(done.returncode == 0 and "not authorized" not in output.lower(), output)


class Subscription:
    """`mosquitto_sub` running in the background, collecting what it receives."""

    def __init__(self, broker: Broker, client: Client, ca_file: Path, topic: str) -> None:
        self._output = broker.directory / f"sub-{client.name}-{time.monotonic_ns()}.txt"
        self._sink = self._output.open("wb")
        self.process = subprocess.Popen(
            ["mosquitto_sub", *_tls_arguments(broker, client, ca_file), "-q", "1", "-t", topic,
             "-v"], stdout=self._sink, stderr=subprocess.STDOUT)
        time.sleep(1.0)  # the subscription is in place before anyone publishes

    def received(self, wait: float = 2.0) -> list[str]:
        time.sleep(wait)
        self._sink.flush()
        return [line for line in self._output.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        stop(self.process)
        self._sink.close()
