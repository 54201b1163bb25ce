"""The `iotpki` command end to end, as a user runs it: in process (`main()` under Typer's
CliRunner isolation: the real argument parsing, exit codes and error lines), and as a real
process for the smoke set (`CLI(..., process=True)`)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iotpki.cli.lazy import COMMANDS
from iotpki.cli.main import app, main
from tests.factories import make_csr


class CLI:
    """`iotpki` on one data directory and database, without a passphrase in the environment
    (`init` writes the passphrase file the later commands read)."""

    def __init__(self, data_dir: Path, database_url: str | None, process: bool = False) -> None:
        self.process = process
        self.changes: dict[str, str | None] = {
            "IOTPKI_DATA_DIR": str(data_dir), "IOTPKI_PUBLIC_URL": "http://pki.test:8080",
            "IOTPKI_CA_PASSPHRASE": None, "IOTPKI_CA_PASSPHRASE_FILE": None,
            "IOTPKI_DATABASE_URL": database_url}
        self.env = {k: v for k, v in {**os.environ, **self.changes}.items() if v is not None}

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = self._spawn(args) if self.process else self._in_process(args)
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    def _spawn(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "iotpki.cli.main", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)

    def _in_process(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        """`main()` as the console script runs it, with argv, environment and the standard
        streams swapped in; an exception other than SystemExit fails the test."""
        argv = sys.argv
        with CliRunner().isolation(env=self.changes) as (out, err, _):
            sys.argv = ["iotpki", *args]
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            finally:
                sys.argv = argv
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
        return subprocess.CompletedProcess(list(args), code, stdout, stderr)

    def json(self, *args: str, expect: int = 0) -> object:
        return json.loads(self.run(*args, "--json", expect=expect).stdout)


@pytest.fixture
def cli(tmp_path: Path, database_url: str | None) -> CLI:
    return CLI(tmp_path / "data", database_url)


def test_init_demo_then_issue_list_show_revoke_and_verify(tmp_path: Path,
                                                          database_url: str | None) -> None:
    cli = CLI(tmp_path / "data", database_url, process=True)  # the smoke set: real processes
    made = cli.json("init", "--demo")
    assert made["authorities_created"] == [  # type: ignore[index]
        "chipco-root", "chipco-components", "deviceco-root", "deviceco-devices",
        "operatorco-root", "operatorco-operations"]
    assert made["passphrase_file"]  # type: ignore[index]
    assert cli.json("init", "--demo")["authorities_created"] == []  # type: ignore[index]
    csr, _ = make_csr("sensor-1")
    (tmp_path / "s.csr").write_bytes(csr)
    issued = cli.json("cert", "issue", "--ca", "operatorco-operations", "--profile", "operational",
                      "--csr", str(tmp_path / "s.csr"),
                      "--san", "uri:urn:iotpki:domain:building-42.operator.example")
    serial = issued["serial"]  # type: ignore[index]
    assert issued["pem"].startswith("-----BEGIN CERTIFICATE-----")  # type: ignore[index]
    listed = cli.json("cert", "list", "--ca", "operatorco-operations", "--status", "good")
    assert [c["serial"] for c in listed] == [serial]  # type: ignore[union-attr]
    shown = cli.json("cert", "show", "operatorco-operations", serial)
    assert shown["sans"] == ["uri:urn:iotpki:domain:building-42.operator.example"]  # type: ignore[index]
    revoked = cli.json("cert", "revoke", "operatorco-operations", serial, "--reason", "keyCompromise")
    assert revoked["status"] == "revoked"  # type: ignore[index]
    verified = cli.json("audit", "verify")
    assert verified["ok"] is True and verified["entries"] == 14  # type: ignore[index]


def test_refusal_exit_code_and_message(cli: CLI, tmp_path: Path) -> None:
    cli.run("init", "--demo")
    csr, _ = make_csr("sensor-1")
    (tmp_path / "s.csr").write_bytes(csr)
    result = cli.run("cert", "issue", "--ca", "operatorco-operations", "--profile", "operational",
                     "--csr", str(tmp_path / "s.csr"), "--san", "dns:*.operator.example", expect=3)
    assert "refused (wildcard)" in result.stderr
    bad = cli.run("cert", "show", "operatorco-operations", "abc", expect=1)
    assert "no certificate abc" in bad.stderr
    assert "unknown authority" in cli.run("authority", "show", "nope", expect=1).stderr


def test_authority_create_export_and_import_anchor(cli: CLI, tmp_path: Path) -> None:
    cli.run("init")
    cli.run("authority", "create", "acme-root", "--org", "acme", "--subject", "CN=Acme Root,O=Acme",
            "--key-type", "ec-p384", "--validity", "20y", "--path-length", "1")
    sub = cli.json("authority", "create", "acme-issuing", "--org", "acme", "--parent", "acme-root",
                   "--subject", "CN=Acme Issuing,O=Acme", "--permit-dns", "acme.example")
    assert sub["kind"] == "intermediate" and sub["chain_length"] == 2  # type: ignore[index]
    chain = tmp_path / "chain.pem"
    cli.run("authority", "export", "acme-issuing", "--out", str(chain))
    cli.run("authority", "export", "acme-issuing", "--format", "pkcs7", "--out",
            str(tmp_path / "chain.p7c"))
    ok = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", str(tmp_path / "chain.p7c"),
                         "-print_certs", "-noout"], capture_output=True, text=True)
    assert ok.returncode == 0 and "Acme Issuing" in ok.stdout
    root_pem = tmp_path / "root.pem"
    root_pem.write_text(chain.read_text().split("-----END CERTIFICATE-----\n")[1]
                        + "-----END CERTIFICATE-----\n")
    anchor = cli.json("authority", "import", "acme-anchor", "--org", "partner",
                      "--cert", str(root_pem))
    assert anchor["kind"] == "trust-anchor" and anchor["key_ref"] is None  # type: ignore[index]
    labels = [a["label"] for a in cli.json("authority", "list")]  # type: ignore[union-attr]
    assert labels == ["acme-root", "acme-issuing", "acme-anchor"]


def test_unencrypted_key_import_needs_the_development_flag(cli: CLI, tmp_path: Path) -> None:
    cli.run("init")
    key = tmp_path / "ca.key"
    cert = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=Legacy CA", "-days", "365", "-addext",
                    "basicConstraints=critical,CA:TRUE", "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)
    refused = cli.run("authority", "import", "legacy", "--org", "acme", "--cert", str(cert),
                      "--key", str(key), expect=1)
    assert "not encrypted" in refused.stderr
    cli.run("--insecure-unencrypted-keys", "authority", "import", "legacy", "--org", "acme",
            "--cert", str(cert), "--key", str(key))


def test_audit_verify_fails_loudly_on_tampering(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "data", None)  # SQLite: tampered with through sqlite3 directly
    cli.run("init", "--demo")
    db = sqlite3.connect(Path(cli.env["IOTPKI_DATA_DIR"]) / "iotpki.db")
    db.execute("UPDATE audit_log SET target = 'x' WHERE seq = 2")
    db.commit()
    db.close()
    result = cli.run("audit", "verify", expect=1)
    assert "entry 2: changed" in result.stderr


def test_profiles_are_listed_from_the_data_directory(cli: CLI) -> None:
    cli.run("init")
    names = [p["name"] for p in cli.json("profile", "list")]  # type: ignore[union-attr]
    assert "operational" in names and "ocsp-responder" in names


def test_every_command_has_a_help_page() -> None:
    # Rich renders help text as markup: a bracket in a docstring once broke `iotpki --help`.
    for name in [None, "init", *COMMANDS]:
        result = CliRunner().invoke(app, [name, "--help"] if name else ["--help"])
        assert result.exit_code == 0, (name, result.output)
