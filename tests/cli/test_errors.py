"""Issue 23 item 3: an error is one line on stderr off a terminal, in our words (no library
class names, FAQ links or Rust parser states), however narrow the terminal claims to be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from typer.testing import CliRunner

from iotpki.cli.main import app
from tests.factories import make_csr


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("errors") / "data"
    result = CliRunner().invoke(app, ["--data-dir", str(data), "init", "--demo"],
                                env={"IOTPKI_CA_PASSPHRASE": "errors test"})
    assert result.exit_code == 0, result.output
    return data


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A real process with a pipe for stderr and a 40-column terminal width."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IOTPKI_")},
           "IOTPKI_CA_PASSPHRASE": "errors test", "COLUMNS": "40"}
    return subprocess.run([sys.executable, "-m", "iotpki.cli.main", "--data-dir",
                           str(data_dir), *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    line = done.stderr.strip()
    for leak in ("cryptography.io", "ParseError", "ValueError", "Traceback", "MalformedFraming"):
        assert leak not in line, line
    return line


def test_a_refusal_is_one_line_and_exit_3(data_dir: Path, tmp_path: Path) -> None:
    csr, _ = make_csr("sensor-wild")
    (tmp_path / "s.csr").write_bytes(csr)
    done = run(data_dir, "cert", "issue", "--ca", "operatorco-operations", "--profile",
               "operational", "--csr", str(tmp_path / "s.csr"), "--san", "dns:*.example.com")
    assert done.returncode == 3
    assert one_line(done).startswith("refused (wildcard): wildcard DNS name")


@pytest.mark.parametrize(("content", "wording"), [
    (b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n", "not valid PEM"),
    (b"\x30\x82\x01\x00\x02", "not valid DER (truncated)"),
])
def test_a_malformed_certificate_file_is_worded_in_our_terms(
        data_dir: Path, tmp_path: Path, content: bytes, wording: str) -> None:
    csr, key = make_csr("chip-x")
    (tmp_path / "s.csr").write_bytes(csr)
    (tmp_path / "chip.pem").write_bytes(content)
    (tmp_path / "chip.key").write_bytes(key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    done = run(data_dir, "cert", "enroll", "--method", "previous-stage-certificate", "--csr",
               str(tmp_path / "s.csr"), "--client-cert", str(tmp_path / "chip.pem"),
               "--client-key", str(tmp_path / "chip.key"), "--out", str(tmp_path / "o.pem"))
    assert done.returncode == 2
    assert one_line(done).startswith(f"error: malformed certificate: {wording}")


def test_a_long_error_is_not_wrapped(data_dir: Path) -> None:
    done = run(data_dir, "cert", "revoke", "operatorco-operations", "abcdef" * 8,
               "--reason", "keyCompromise")
    assert done.returncode == 1
    assert one_line(done).startswith("error: ")



REGISTRATION = ["registration", "create", "--org", "operatorco", "--ca",
                "operatorco-operations", "--profile", "operational", "--method",
                "one-time-secret"]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["cert", "show", "nope", "01"], 1, "error: unknown authority 'nope'"),
    ([*REGISTRATION, "--subject", "CN"], 2, "error: malformed subject 'CN': expected"),
    ([*REGISTRATION, "--lifetime", "3x"], 2, "error: bad duration '3x'"),
    (["cert", "show", "operatorco-operations", "zz"], 2,
     "error: serial 'zz' is not hexadecimal"),
    (["cert", "revoke", "operatorco-operations", "01", "--reason", "bored"], 2,
     "error: unknown revocation reason 'bored'"),
])
def test_exit_codes_as_docs_cli_md_says(data_dir: Path, args: list[str], code: int,
                                        words: str) -> None:
    """Issue 22 item 12: each kind of error exits with the code docs/cli.md's table gives
    (1 an iotpki error, 2 a bad value; 3, a refusal, above), in one line in our words."""
    done = run(data_dir, *args)
    assert one_line(done).startswith(words), done.stderr
    assert done.returncode == code, done.stderr
