"""Issue 22: the README's "Using it" section, run line by line on a fresh data directory,
so that the README cannot drift from the product. `iotpki` lines run in process (CliRunner),
`openssl` lines as real processes; `<serial>` and `<device-id>` stand for the certificate
issued last and the device the enrollment made. The Quick start must stay two commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from iotpki.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"
# Lines that run for long or need peers: each has its own test (demo, agent, fleet, serve).
ELSEWHERE = {
    "iotpki demo": "tests/demo",
    "iotpki-agent --config agent.toml enroll": "tests/agent",
    "iotpki-agent --config agent.toml run": "tests/agent",
    "iotpki fleet simulate --devices 1000 --url https://127.0.0.1:8443 --api-key "
    "'<registrar-key>' --tls-ca iotpki-data/tls/client-cas.pem": "tests/agent/test_fleet.py",
    "iotpki serve --http-port 8080 --https-port 8443": "tests/est, tests/revocation",
}


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block is not None
    return block.group(1)


def commands(block: str) -> list[str]:
    """Logical lines (continuations joined), without comments and blank lines."""
    joined = block.replace("\\\n", " ")
    lines = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            lines.append(shlex.join(words))
    return lines


def test_the_quick_start_is_two_commands() -> None:
    assert commands(section("Quick start")) == ["bash scripts/start.sh", "bash scripts/test.sh"]


def test_the_readme_puts_iotpki_on_path() -> None:
    """Issue 22 item 1: after setup, the README's first line of "Using it" makes `iotpki`
    and `iotpki-agent` commands of the shell (they are not on PATH without it)."""
    first = commands(section("Using it"))[0]
    assert first == "source .venv/bin/activate"
    venv = Path(sys.executable).parent.parent  # setup.sh's .venv, where the tests run
    assert (venv / "bin" / "activate").is_file(), f"{venv} is not a virtual environment"
    bare = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if Path(p).resolve() != (venv / "bin").resolve())
    script = (f"! command -v iotpki >/dev/null || [ \"$(command -v iotpki)\" != "
              f"{shlex.quote(str(venv / 'bin' / 'iotpki'))} ]; "
              f"source {shlex.quote(str(venv / 'bin' / 'activate'))} && "
              "iotpki --help >/dev/null && iotpki-agent --help >/dev/null && command -v iotpki")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": bare}, check=False)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent.resolve() == (venv / "bin").resolve()


def test_using_it_runs_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("IOTPKI_CA_PASSPHRASE", "IOTPKI_CA_PASSPHRASE_FILE", "IOTPKI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    found: dict[str, str] = {}
    skipped = []
    for line in commands(section("Using it")):
        words = shlex.split(line)
        if line == "source .venv/bin/activate":
            continue
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            monkeypatch.setenv(name, value.replace("$PWD", str(tmp_path)))
            continue
        if line in ELSEWHERE:
            skipped.append(line)
            continue
        words = [found.get(w.strip("<>"), w) if w.startswith("<") else w for w in words]
        if words[0] == "openssl":
            subprocess.run(words, check=True, capture_output=True, timeout=60)
            continue
        assert words[0] == "iotpki", line
        result = runner.invoke(app, words[1:])
        assert result.exit_code == 0, (line, result.output, result.exception)
        _remember(words, result.output, found, runner)
    assert skipped == list(ELSEWHERE)
    assert set(found) == {"serial", "device-id"}
    assert (tmp_path / "iotpki-data" / "iotpki.db").exists()


def _remember(words: list[str], output: str, found: dict[str, str], runner: CliRunner) -> None:
    """What later lines refer to: the serial issued last, the device enrollment made."""
    if words[1:3] == ["cert", "issue"]:
        pem = Path(words[words.index("--out") + 1]).read_bytes()
        found["serial"] = format(x509.load_pem_x509_certificate(pem).serial_number, "x")
    if words[1:3] == ["cert", "enroll"]:
        devices = json.loads(runner.invoke(app, ["device", "list", "--json"]).output)
        assert len(devices) == 1, devices
        found["device-id"] = devices[0]["id"]
