"""`iotpki-agent` as a device runs it: a TOML file, then enroll, status, run --once, renew,
against a real server (EST with a one-time secret read from a file)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from iotpki.agent.trust import certificate_fingerprint
from tests.agent.conftest import Servers


def agent(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "iotpki.agent.cli", "--config", str(config),
                           "--json", *args], capture_output=True, text=True, timeout=300,
                          env=environment, check=False)


def test_enroll_status_run_renew(servers: Servers, tmp_path: Path) -> None:
    registration, secret = servers.secret_registration("sensor-cli")
    (tmp_path / "secret").write_text(secret + "\n")
    marker = tmp_path / "reloaded"
    config = tmp_path / "agent.toml"
    config.write_text(f"""
directory = "device"
protocol = "est"
url = "{servers.https_url}"
trust_anchors = ["{certificate_fingerprint(servers.root)}"]
subject = "CN=sensor-cli"

[enrollment]
registration_id = "{registration}"
secret_file = "secret"

[renewal]
fraction = 0.6667
grace = 15552000

[[hooks]]
command = ["{sys.executable}", "-c", "open('{marker}', 'a').write('x')"]
timeout = 20
""")
    enrolled = agent(config, "enroll")
    assert enrolled.returncode == 0, enrolled.stderr
    fields = json.loads(enrolled.stdout)
    assert fields["subject"] == "CN=sensor-cli" and fields["hooks"][0]["returncode"] == 0
    assert stat.S_IMODE(Path(fields["key_file"]).stat().st_mode) == 0o600
    assert marker.read_text() == "x"

    status = json.loads(agent(config, "status").stdout)
    assert status["next_action"] == "wait" and status["failures"] == 0
    assert status["renew_at"] == fields["renew_at"]

    once = agent(config, "run", "--once")
    assert once.returncode == 0, once.stderr
    assert json.loads(once.stdout.splitlines()[0])["action"] == "wait"

    renewed = agent(config, "renew")
    assert renewed.returncode == 0, renewed.stderr
    assert json.loads(renewed.stdout)["serial"] != fields["serial"]
    assert marker.read_text() == "xx"
    assert (tmp_path / "device" / "anchors.pem").exists()

    # Issue 23 item 5: the renewal time follows the configuration at every start, for the
    # certificate already installed; fraction 0 (renew at once) is a valid setting.
    before = json.loads(agent(config, "status").stdout)
    config.write_text(config.read_text().replace("fraction = 0.6667", "fraction = 0.5"))
    earlier = json.loads(agent(config, "status").stdout)
    assert earlier["renew_at"] < before["renew_at"] and earlier["next_action"] == "wait"
    config.write_text(config.read_text().replace("fraction = 0.5", "fraction = 0\njitter = 0"))
    now = agent(config, "status")
    assert now.returncode == 0, now.stderr
    assert json.loads(now.stdout)["next_action"] == "renew"


def test_bad_configuration_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('directory = "d"\nprotocol = "scep"\n')
    done = agent(config, "status")
    assert done.returncode == 2 and "protocol" in done.stderr


def test_refused_enrollment_exit_code_1(servers: Servers, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f"""
directory = "device"
protocol = "cmp"
url = "{servers.http_url}/.well-known/cmp"
trust_anchors = ["{certificate_fingerprint(servers.root)}"]
subject = "CN=nobody"
[enrollment]
registration_id = "no-such-registration"
secret = "wrong"
""")
    done = agent(config, "enroll")
    assert done.returncode == 1 and "badMessageCheck" in done.stderr, done.stderr
