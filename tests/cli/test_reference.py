"""Issue 22 item 10: docs/cli-reference.md is generated from the CLI itself and current
(every command, including enroll, serve, org, registration, manifest, request, crl)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_reference_is_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "export_cli_reference.py"),
                           "--check"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_the_reference_covers_the_commands_the_issue_named() -> None:
    text = (ROOT / "docs" / "cli-reference.md").read_text()
    for heading in ("`iotpki cert enroll`", "`iotpki serve`", "`iotpki org trust`",
                    "`iotpki registration create`", "`iotpki manifest export`",
                    "`iotpki request list`", "`iotpki crl publish`"):
        assert heading in text, heading
