"""Issue 22 item 5: `cert list` off a terminal keeps each value whole on one line, lists
the newest first and says when more certificates match than it shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iotpki.cli.main import app
from tests.factories import make_csr


def test_cert_list_in_a_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "tables test")
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(app, ["--data-dir", str(data), "init", "--demo"]).exit_code == 0
    serials = []
    for number in range(3):
        csr, _ = make_csr(f"sensor-with-a-rather-long-common-name-{number}")
        (tmp_path / "s.csr").write_bytes(csr)
        issued = runner.invoke(app, ["--data-dir", str(data), "cert", "issue", "--ca",
                                     "deviceco-devices", "--profile", "device", "--csr",
                                     str(tmp_path / "s.csr"), "--out", str(tmp_path / "s.pem")])
        assert issued.exit_code == 0, issued.output
        serials.append(issued.output.split(":")[1].split()[0])
    done = subprocess.run([sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(data),
                           "cert", "list", "--limit", "2"], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "deviceco-devices" in line]
    assert [next(s for s in serials if s in row) for row in rows] == serials[:0:-1]
    assert all("rather-long-common-name" in row for row in rows)  # whole, not folded
    assert done.stderr.strip() == ("showing 1-2, newest first; more match: use --offset 2 "
                                   "or --limit")
