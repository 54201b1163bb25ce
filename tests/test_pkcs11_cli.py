"""`iotpki authority create|import|rotate-responder` with keys on a SoftHSM2 token, as a user
runs them (a real process each time, so each has its own PKCS#11 login). Bad input ends the
command with one line and exit code 1, and leaves no authority and no creation audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from iotpki.cli.main import app
from tests.hsm import SoftHSM

pytestmark = pytest.mark.usefixtures("softhsm")


class CLI:
    def __init__(self, data_dir: Path, hsm: SoftHSM) -> None:
        self.env = {**os.environ, **hsm.environment(), "IOTPKI_DATA_DIR": str(data_dir),
                    "IOTPKI_CA_PASSPHRASE": "cli test passphrase",
                    "IOTPKI_KEY_BACKEND": "software", "COLUMNS": "400"}
        self.env.pop("IOTPKI_PKCS11_PIN_FILE", None)
        self.env.pop("IOTPKI_DATABASE_URL", None)
        self.pin = hsm.pin

    def run(self, *args: str, expect: int = 0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "iotpki.cli.main", *args],
                                env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert self.pin not in result.stdout + result.stderr  # the PIN is never shown
        return result

    def json(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> object:
        return json.loads(self.run(*args, "--json", expect=expect, env=env).stdout)

    def refused(self, *args: str, env: dict[str, str] | None = None) -> str:
        """The one-line error of a command that must fail."""
        result = self.run(*args, expect=1, env=env)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        return lines[0]

    def nothing_created(self, label: str) -> None:
        assert label not in [a["label"] for a in self.json("authority", "list")]  # type: ignore[union-attr]
        creations = [e for e in self.json("audit", "list")  # type: ignore[union-attr]
                     if e["action"] == "authority.create" and e["target"] == label]
        assert creations == []


@pytest.fixture
def cli(tmp_path: Path, softhsm: SoftHSM) -> CLI:
    """SQLite only: the token is what these tests are about (the database tests run the
    same commands on PostgreSQL). `init` runs in-process: only `init` creates a database."""
    cli = CLI(tmp_path / "data", softhsm)
    assert CliRunner().invoke(app, ["init"], env=cli.env).exit_code == 0
    return cli


ROOT = ("authority", "create", "hsm-root", "--org", "hsmco", "--subject", "CN=HSM Root,O=HSMCo")


def test_create_a_ca_on_the_token_issue_from_it_and_rotate_its_responder(
    cli: CLI, tmp_path: Path
) -> None:
    label = f"hsm-issuing-{uuid.uuid4().hex[:8]}"  # the token is shared by the run's tests
    root = cli.json(*ROOT, "--key-backend", "pkcs11", "--key-type", "ec-p384")
    assert root["key_ref"].startswith("pkcs11:token=iotpki-test;object=hsm-root-")  # type: ignore[index]
    sub = cli.json("authority", "create", "hsm-issuing", "--org", "hsmco", "--subject",
                   "CN=HSM Issuing,O=HSMCo", "--parent", "hsm-root", "--key-type", "rsa-2048",
                   "--key-uri", f"pkcs11:token=iotpki-second;object={label}")
    assert sub["key_ref"].startswith(  # type: ignore[index]
        f"pkcs11:token=iotpki-second;object={label};id=")
    chain = tmp_path / "chain.pem"
    cli.run("authority", "export", "hsm-issuing", "--out", str(chain))
    check = subprocess.run(["openssl", "verify", "-CAfile", str(chain), str(chain)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    responder = cli.json("authority", "rotate-responder", "hsm-issuing")
    assert responder["key_location"] == "pkcs11:token=iotpki-second"  # type: ignore[index]


def test_import_a_ca_whose_key_is_already_on_the_token(cli: CLI, tmp_path: Path) -> None:
    uri = f"pkcs11:token=iotpki-test;object=adopt-me-{uuid.uuid4().hex[:8]}"
    made = cli.json(*ROOT, "--key-uri", uri)
    cert = tmp_path / "root.pem"
    cli.run("authority", "export", "hsm-root", "--out", str(cert))
    imported = cli.json("authority", "import", "adopted", "--org", "other", "--cert", str(cert),
                        "--key-uri", uri)
    assert imported["key_ref"] == made["key_ref"]  # type: ignore[index]
    x509.load_pem_x509_certificate(cert.read_bytes())


def test_wrong_pin_is_refused_at_once(cli: CLI) -> None:
    line = cli.refused(*ROOT, "--key-backend", "pkcs11",
                       env={"IOTPKI_PKCS11_PIN": "not-the-pin"})
    assert line == "error: wrong PIN for token 'iotpki-test'"
    cli.nothing_created("hsm-root")
    assert "hsmco" not in [o["label"] for o in cli.json("org", "list")]  # type: ignore[union-attr]


def test_pin_from_a_file(cli: CLI, tmp_path: Path, softhsm: SoftHSM) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    env = {"IOTPKI_PKCS11_PIN": "", "IOTPKI_PKCS11_PIN_FILE": str(pin_file)}
    assert cli.json(*ROOT, "--key-backend", "pkcs11", env=env)["key_ref"].startswith("pkcs11:")  # type: ignore[index]
    line = cli.refused("authority", "create", "no-pin", "--org", "hsmco", "--subject", "CN=N",
                       "--key-backend", "pkcs11", env={"IOTPKI_PKCS11_PIN": ""})
    assert line == "error: no PKCS#11 PIN: set IOTPKI_PKCS11_PIN or IOTPKI_PKCS11_PIN_FILE"


def test_missing_token_is_refused(cli: CLI) -> None:
    line = cli.refused(*ROOT, "--key-uri", "pkcs11:token=no-such-token")
    assert line.startswith("error: no PKCS#11 token matches token 'no-such-token' in module ")
    cli.nothing_created("hsm-root")


def test_missing_key_is_refused(cli: CLI, tmp_path: Path) -> None:
    cli.json(*ROOT, "--key-backend", "software")
    cert = tmp_path / "root.pem"
    cli.run("authority", "export", "hsm-root", "--out", str(cert))
    line = cli.refused("authority", "import", "ghost", "--org", "hsmco", "--cert", str(cert),
                       "--key-uri", "pkcs11:token=iotpki-test;object=no-such-label")
    assert line == "error: not found: key 'no-such-label' on token 'iotpki-test'"
    cli.nothing_created("ghost")


@pytest.mark.parametrize("key_type", ["ed25519", "ml-dsa-65"])
def test_unsupported_key_type_is_refused_before_anything_is_written(
    cli: CLI, key_type: str
) -> None:
    line = cli.refused(*ROOT, "--key-backend", "pkcs11", "--key-type", key_type)
    assert line.startswith(f"error: key type {key_type} cannot be kept on a PKCS#11 token")
    cli.nothing_created("hsm-root")


def test_a_pin_in_the_uri_is_refused(cli: CLI) -> None:
    result = cli.run(*ROOT, "--key-uri", f"pkcs11:token=iotpki-test?pin-value={cli.pin}",
                     expect=2)
    assert "IOTPKI_PKCS11_PIN" in result.stderr


def test_serve_refuses_to_start_with_a_wrong_pin(cli: CLI) -> None:
    cli.json(*ROOT, "--key-backend", "pkcs11")
    line = cli.refused("serve", "--http-port", "1", "--https-port", "0",
                       env={"IOTPKI_PKCS11_PIN": "not-the-pin"})
    assert line == "error: wrong PIN for token 'iotpki-test'"
