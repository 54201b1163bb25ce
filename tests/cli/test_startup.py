"""Issue 22: the CLI starts fast (lazy imports), refuses a data directory without a
database, finds a wrong CA passphrase at `serve` startup, and its help reads well."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.core import TyperGroup
from typer.testing import CliRunner

from iotpki.cli.lazy import COMMANDS, load
from iotpki.cli.main import app

PROBE = """
import json, sys
from iotpki.cli.main import app
try:
    app(sys.argv[1:])
except (SystemExit, Exception):  # a refusal (no such certificate) ends the command too
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
HEAVY = ("iotpki.protocols.cmp", "iotpki.protocols.est", "iotpki.protocols.rest",
         "iotpki.protocols.ocsp", "iotpki.protocols.crl", "iotpki.https_server", "iotpki.server",
         "uvicorn", "starlette", "fastapi", "alembic", "iotpki.cli.demo", "iotpki.cli.fleet", "iotpki.agent",
         "iotpki.wire.cmp", "iotpki.cli.serve")


def imported_by(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a fresh `iotpki ARGS` process has imported when it ends."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, check=False)
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return modules


# The composition root keeps REST idempotency records (a store helper, no web framework).
ALLOWED = ("iotpki.protocols.rest", "iotpki.protocols.rest.idempotency")


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(HEAVY) and m not in ALLOWED]


def test_help_imports_no_server_database_or_demo_code() -> None:
    modules = imported_by("--help")
    assert heavy(modules) == []
    assert "iotpki.app" not in modules and "sqlalchemy" not in modules


# What a read of certificates does not need: the composition root and the services it
# builds, keys, ASN.1 modules of manifests/OCSP/CMP, the other repositories.
NOT_FOR_READS = ("iotpki.app", "iotpki.keys", "pyasn1_alt_modules", "iotpki.core.ra.",
                 "iotpki.core.supply_chain.manifests", "iotpki.core.revocation.ocsp",
                 "iotpki.store.registrations", "iotpki.store.audit")


def test_cert_list_and_show_import_the_certificate_store_alone(tmp_path: Path) -> None:
    """Issue 22 item 6: `cert list` and `cert show` build no PKI (docs/performance.md)."""
    data = tmp_path / "data"
    assert CliRunner().invoke(app, ["--data-dir", str(data), "init"],
                              env={"IOTPKI_INSECURE_UNENCRYPTED_KEYS": "1"}).exit_code == 0
    for args in (["cert", "list"], ["cert", "show", "--fingerprint", "00"]):
        modules = imported_by("--data-dir", str(data), *args)
        assert "iotpki.store.certificates" in modules, args  # it did run
        assert heavy(modules) == [], args
        assert [m for m in modules if m.startswith(NOT_FOR_READS)] == [], args


def test_init_without_demo_imports_no_demo_code(tmp_path: Path) -> None:
    modules = imported_by("--data-dir", str(tmp_path / "data"), "init",
                          env={"IOTPKI_INSECURE_UNENCRYPTED_KEYS": "1"})
    assert "iotpki.app" in modules and "alembic" in modules  # it did run and migrate
    assert [m for m in heavy(modules) if not m.startswith("alembic")] == []


def test_each_listed_help_is_the_commands_own_first_paragraph() -> None:
    for name, (_, short_help) in COMMANDS.items():
        real = load(name)
        first = " ".join((real.help or "").split("\n\n")[0].split())
        assert first == short_help, name


def test_every_command_and_sub_command_has_a_help_page() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--help"]).exit_code == 0
    for name in ["init", *COMMANDS]:
        command = load(name) if name in COMMANDS else None
        subs = list(command.commands) if isinstance(command, TyperGroup) else [None]
        for sub in subs:
            args = [name, sub, "--help"] if sub else [name, "--help"]
            result = runner.invoke(app, args, terminal_width=100)
            assert result.exit_code == 0, (args, result.output)
            assert "<str>" not in result.output and "<bool>" not in result.output, args
            assert "list[" not in result.output, args


def test_cert_issue_help_explains_every_option() -> None:
    result = CliRunner().invoke(app, ["cert", "issue", "--help"], terminal_width=200)
    profile_line = next(line for line in result.output.splitlines() if "--profile" in line)
    assert "TEXT" in profile_line and "Profile" in profile_line


def test_a_data_dir_without_a_database_is_refused_and_not_created(tmp_path: Path) -> None:
    """A mistyped --data-dir: exit 1, say to run `iotpki init`, create nothing."""
    missing = tmp_path / "typo"
    for args in (["authority", "list"], ["cert", "list"], ["audit", "verify"]):
        result = CliRunner().invoke(app, ["--data-dir", str(missing), *args])
        assert result.exit_code != 0, args
        assert "iotpki init" in str(result.exception), args
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["--data-dir", str(empty), "authority", "list"])
    assert "iotpki init" in str(result.exception)
    assert list(empty.iterdir()) == []


def test_the_refusal_is_one_line_with_exit_1(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "iotpki.cli.main", "--data-dir",
                           str(tmp_path / "nope"), "authority", "list"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "40"})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: no iotpki database")


def test_serve_with_a_wrong_ca_passphrase_ends_at_startup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTPKI_")}
    assert CliRunner().invoke(app, ["--data-dir", str(data), "init", "--demo"],
                              env={"IOTPKI_CA_PASSPHRASE": "right"}).exit_code == 0
    done = subprocess.run([sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(data),
                           "serve", "--http-port", "1"], capture_output=True, text=True,
                          timeout=120, check=False,
                          env={**env, "IOTPKI_CA_PASSPHRASE": "wrong", "COLUMNS": "60"})
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot be used" in lines[0] and "IOTPKI_CA_PASSPHRASE" in lines[0]
