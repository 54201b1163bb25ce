"""Issue 22: `iotpki doctor` checks the data directory, database, keys and passphrase,
public URL, clock and listener, one line each, and exits 1 when something needs fixing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iotpki.cli.main import app


def checks(result_output: str) -> dict[str, tuple[bool, str]]:
    return {c["check"]: (c["ok"], c["detail"]) for c in json.loads(result_output)}


def test_doctor_reports_each_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "doctor test")
    base = ["--data-dir", str(tmp_path / "data"), "--public-url", "http://127.0.0.1:9"]
    runner = CliRunner()
    missing = runner.invoke(app, [*base, "doctor", "--json"])
    assert missing.exit_code == 1
    assert "run 'iotpki init'" in checks(missing.output)["data directory"][1]
    assert runner.invoke(app, [*base, "init", "--demo"]).exit_code == 0
    report = runner.invoke(app, [*base, "doctor", "--json"])
    found = checks(report.output)
    assert found["data directory"][0] and found["database"][0] and found["clock"][0]
    assert found["key of operatorco-operations"] == (True, "loads (file)")
    assert found["public URL"][0]
    assert found["listener"][0] is False and "start 'iotpki serve'" in found["listener"][1]
    assert report.exit_code == 1  # nothing listens
    assert "fleet counters" not in found  # read every certificate only when asked
    recounted = checks(runner.invoke(app, [*base, "doctor", "--json", "--recount-fleet"]).output)
    assert recounted["fleet counters"] == (True, "equal to the certificates")
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "wrong")
    wrong = checks(runner.invoke(app, [*base, "doctor", "--json"]).output)
    ok, detail = wrong["key of operatorco-operations"]
    assert not ok and "IOTPKI_CA_PASSPHRASE" in detail
    text = runner.invoke(app, [*base, "doctor"], terminal_width=60)
    assert all(line.startswith(("ok", "FAIL")) for line in text.output.splitlines())
