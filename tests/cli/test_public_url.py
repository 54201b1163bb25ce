"""Issue 22 item 11: the public URL is chosen at `init` (given, asked for on a terminal, or
derived) and kept in the data directory's settings.yaml, which every command and `serve`
read; `iotpki config set public-url` changes it and republishes the CRLs at once, so that
`openssl verify -crl_check` accepts certificates issued before and after the change with the
CRL from either distribution point (RFC 5280 §4.2.1.13, §5.2.5)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import make_csr
from tests.test_cli import CLI

CA = "operatorco-operations"
DOMAIN_SAN = "uri:urn:iotpki:domain:building-42.operator.example"


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """The CLI on SQLite, without IOTPKI_PUBLIC_URL: the stored URL is the one in effect."""
    made = CLI(tmp_path / "data", None)
    made.changes["IOTPKI_PUBLIC_URL"] = None
    made.env.pop("IOTPKI_PUBLIC_URL", None)
    return made


def issue(cli: CLI, directory: Path, name: str) -> tuple[str, Path]:
    csr, _ = make_csr(name)
    (directory / f"{name}.csr").write_bytes(csr)
    pem = directory / f"{name}.pem"
    issued = cli.json("cert", "issue", "--ca", CA, "--profile", "operational", "--csr",
                      str(directory / f"{name}.csr"), "--san", DOMAIN_SAN, "--out", str(pem))
    return str(issued["serial"]), pem  # type: ignore[index]


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def verify(chain: Path, crl: Path, leaf: Path) -> str:
    done = openssl("verify", "-crl_check", "-CAfile", str(chain), "-CRLfile", str(crl),
                   str(leaf))
    return (done.stdout + done.stderr).strip()


def crl_pem(cli: CLI, directory: Path, name: str) -> Path:
    der = directory / f"{name}.der"
    cli.run("crl", "show", CA, "--out", str(der))
    pem = directory / f"{name}.crl.pem"
    done = openssl("crl", "-inform", "DER", "-in", str(der), "-out", str(pem))
    assert done.returncode == 0, done.stderr
    return pem


def test_init_stores_the_given_url_and_certificates_name_it(cli: CLI, tmp_path: Path) -> None:
    made = cli.json("init", "--demo", "--public-url", "http://pki.test:9000/")
    assert made["public_url"] == "http://pki.test:9000"  # type: ignore[index]
    assert "public_url: http://pki.test:9000" in (tmp_path / "data" / "settings.yaml").read_text()
    shown = cli.json("config", "show")
    assert shown["public_url"] == "http://pki.test:9000"  # type: ignore[index]
    assert shown["public_url_source"] == str(tmp_path / "data" / "settings.yaml")  # type: ignore[index]
    _, pem = issue(cli, tmp_path, "sensor-1")
    text = openssl("x509", "-in", str(pem), "-noout", "-ext",
                   "crlDistributionPoints,authorityInfoAccess").stdout
    assert f"URI:http://pki.test:9000/crl/{CA}.crl" in text
    assert f"OCSP - URI:http://pki.test:9000/ocsp/{CA}" in text
    assert f"CA Issuers - URI:http://pki.test:9000/ca/{CA}.crt" in text


def test_init_without_a_url_off_a_terminal_stores_the_derived_one(cli: CLI) -> None:
    """No terminal, no --public-url: where `iotpki serve` listens by default."""
    assert cli.json("init")["public_url"] == "http://127.0.0.1:8080"  # type: ignore[index]
    assert cli.json("config", "show")["public_url"] == "http://127.0.0.1:8080"  # type: ignore[index]
    # A run with the option (or IOTPKI_PUBLIC_URL) uses it for that run, the file stays.
    once = cli.json("--public-url", "http://other.test", "config", "show")
    assert once["public_url_source"] == "--public-url or IOTPKI_PUBLIC_URL"  # type: ignore[index]
    # Certificates issued with the stored URL stay in the scope of CRLs published meanwhile.
    assert once["previous_public_urls"] == ["http://127.0.0.1:8080"]  # type: ignore[index]
    assert cli.json("config", "show")["public_url"] == "http://127.0.0.1:8080"  # type: ignore[index]


@pytest.mark.parametrize("url", ["ftp://pki.test", "pki.test:8080", "http://pki.test/?a=b",
                                 "http://pki.test:port"])
def test_a_url_that_is_no_base_url_is_refused_in_one_line(cli: CLI, url: str) -> None:
    refused = cli.run("init", "--public-url", url, expect=2)
    assert refused.stderr.count("\n") == 1 and "public URL" in refused.stderr


def test_init_on_a_terminal_asks_for_the_url(tmp_path: Path) -> None:
    """The prompt offers the derived URL; the answer is stored."""
    data = tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IOTPKI_")},
           "IOTPKI_INSECURE_UNENCRYPTED_KEYS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "iotpki.cli.main", "--data-dir",
                                str(data), "init"], stdin=follower, stdout=follower,
                               stderr=follower, env=env)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while b"[http://127.0.0.1:8080]:" not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(leader, 1024)
    assert b"Public base URL relying parties use" in seen
    os.write(leader, b"https://pki.example.net\n")
    while True:  # drain until the process ends (it closes the terminal)
        try:
            if not os.read(leader, 1024):
                break
        except OSError:
            break
    assert process.wait(timeout=120) == 0
    os.close(leader)
    assert "public_url: https://pki.example.net" in (data / "settings.yaml").read_text()


def test_a_changed_url_republishes_crls_openssl_accepts_old_and_new_certificates(
        cli: CLI, tmp_path: Path) -> None:
    cli.run("init", "--demo", "--public-url", "http://old.test:8080")
    _, before = issue(cli, tmp_path, "before")
    revoked_serial, revoked = issue(cli, tmp_path, "revoked")
    cli.run("cert", "revoke", CA, revoked_serial, "--reason", "keyCompromise")
    cli.run("crl", "publish", CA)
    old_crl = crl_pem(cli, tmp_path, "old")
    chain = tmp_path / "chain.pem"
    cli.run("authority", "export", CA, "--out", str(chain))

    changed = cli.json("config", "set", "public-url", "http://new.test:9090")
    assert changed == {"public_url": "http://new.test:9090",
                       "previous": ["http://old.test:8080"], "republished": [CA]}
    _, after = issue(cli, tmp_path, "after")
    cdp = openssl("x509", "-in", str(after), "-noout", "-ext", "crlDistributionPoints").stdout
    assert f"URI:http://new.test:9090/crl/{CA}.crl" in cdp and "old.test" not in cdp

    # Without the change, the old CRL's scope leaves out a certificate naming the new CDP.
    assert "different CRL scope" in verify(chain, old_crl, after)
    new_crl = crl_pem(cli, tmp_path, "new")
    scope = openssl("crl", "-in", str(new_crl), "-noout", "-text").stdout
    assert (f"URI:http://new.test:9090/crl/{CA}.crl" in scope
            and f"URI:http://old.test:8080/crl/{CA}.crl" in scope)
    assert verify(chain, new_crl, before) == f"{before}: OK"
    assert verify(chain, new_crl, after) == f"{after}: OK"
    assert "certificate revoked" in verify(chain, new_crl, revoked)
    # Nothing left to republish: the same URL again changes nothing.
    again = cli.json("config", "set", "public-url", "http://new.test:9090")
    assert again["republished"] == []  # type: ignore[index]
    shown = cli.json("config", "show")
    assert shown["previous_public_urls"] == ["http://old.test:8080"]  # type: ignore[index]


def test_config_set_tells_when_the_environment_overrides_it(cli: CLI) -> None:
    cli.run("init")
    told = cli.run("--public-url", "http://env.test", "config", "set", "public-url",
                   "http://stored.test")
    assert "takes precedence" in told.stderr
    assert json.loads(cli.run("config", "show", "--json").stdout)["public_url"] == \
        "http://stored.test"
