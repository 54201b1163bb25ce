"""`iotpki demo` end to end: a real `iotpki serve`, the device agent over EST and CMP, and a
real Mosquitto broker (mutual TLS, our CRL, ACL) with the Mosquitto command-line clients."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def _mosquitto() -> None:
    missing = [t for t in ("mosquitto_pub", "mosquitto_sub") if shutil.which(t) is None]
    if missing or not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail(f"Mosquitto and its clients are needed (scripts/system-packages.sh): {missing}")


def test_the_story_runs_end_to_end(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    environment.pop("IOTPKI_DATA_DIR", None)
    environment.pop("IOTPKI_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "iotpki.cli.main", "demo", "--data-dir",
                           str(tmp_path / "demo"), "--json"], capture_output=True, text=True,
                          timeout=600, env=environment, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    titles = [s["title"] for s in result["steps"]]
    for title in ("ChipCo", "manifest", "DeviceCo", "OperatorCo", "renewal", "peer check",
                  "broker", "MQTT", "stolen"):
        assert title in titles
    # a building-42 sensor's reading reached the building-42 subscriber, the intruder's not
    assert result["published"] == ["building-42.operator.example/floor-3/temperature 21.5"]
    refused = result["refused"]
    assert refused["chip-0004"].startswith("not-registered")  # counterfeit filtering
    assert "not authorized" in refused["sensor-b7-0001"].lower()  # the other domain
    assert refused["sensor-b7-0001 → broker"] == "other-domain"  # its own peer check
    assert refused["sensor-0003"]  # the stolen sensor, at the TLS handshake
    assert "revoked" in refused["sensor-0003 renewal"] or refused["sensor-0003 renewal"]
    assert result["broker_reloaded_in_place"] is True
    log = (tmp_path / "demo" / "broker" / "mosquitto.log").read_text()
    assert "certificate verify failed" in log  # the broker, not the client, refused it
