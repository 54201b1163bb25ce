"""Issue 22 item 8: `org trust` is idempotent, so the README's line runs after `init --demo`
(which already records that trust) with exit 0 and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iotpki.cli.main import app


def test_trusting_again_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "trust test")
    base = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    assert runner.invoke(app, [*base, "init", "--demo"]).exit_code == 0
    trust = [*base, "org", "trust", "deviceco", "--supplier", "chipco", "--anchor", "chipco-root"]
    again = runner.invoke(app, trust)
    assert again.exit_code == 0, again.output
    assert "deviceco already trusts chipco through chipco-root" in again.output
    assert json.loads(runner.invoke(app, [*trust, "--json"]).output)["already"] is True
    audit = json.loads(runner.invoke(app, [*base, "audit", "list", "--json"]).output)
    assert sum(e["action"] == "trust.add" for e in audit) == 2  # the demo's two, no more
    first = runner.invoke(app, [*base, "org", "trust", "operatorco", "--supplier", "chipco",
                                "--anchor", "chipco-root", "--json"])
    assert json.loads(first.output)["already"] is False
