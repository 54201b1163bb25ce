"""The command lines of docs/cmp.md "Configure a third-party CMP client" run as printed
(host, data directory and the secret filled in) against one `iotpki serve`: curl and
openssl for the trust anchor, `iotpki registration create` for a secret and a reusable
reference, `openssl cmp` ir with the reference, kur and cr with the certificate, rr (by the
holder, by an RA principal made with `iotpki principal create`, MAC-protected), genm with the
secret and with the certificate. A page that stops working fails here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.settings import Settings
from tests.revocation.conftest import Server, free_port

pytestmark = pytest.mark.interop
DOC = Path(__file__).resolve().parents[2] / "docs" / "cmp.md"
PASSPHRASE = "test passphrase, not a secret"


def _commands() -> list[str]:
    """Every command of the section's sh blocks, continuation lines joined."""
    text = DOC.read_text()
    section = text[text.index("## Configure a third-party CMP client"):text.index("## Layers")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines()
                     if line.strip() and not line.strip().startswith("#")]
    return commands


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    directory = tmp_path_factory.mktemp("cmp-docs")
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
        settings = Settings(data_dir=directory / "data", public_url=f"http://127.0.0.1:{port}")
        pki = build_pki(settings)
        create_demo_hierarchy(pki)
        pki.close()
        server = Server(settings, port)
        try:
            server.wait_ready(timeout=120)
            yield server, directory
        finally:
            server.stop()


def test_the_documented_commands_work(served: tuple[Server, Path]) -> None:
    server, directory = served
    host = server.url.removeprefix("http://")
    iotpki = f"{sys.executable} -m iotpki.cli.main --data-dir {directory / 'data'}"
    environment = {**os.environ, "IOTPKI_CA_PASSPHRASE": PASSPHRASE}
    commands = _commands()
    assert len(commands) >= 12, commands
    ran = []
    for command in commands:
        if "<id>" in command:
            continue  # the cancel example names a registration id
        line = (command.replace("pki.example:8080", host).replace("SECRET", "$SECRET")
                .replace("iotpki registration", f"{iotpki} registration")
                .replace("iotpki principal", f"{iotpki} principal"))
        done = subprocess.run(["bash", "-c", line], cwd=directory, env=environment,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        if "--reference" in command:
            environment["SECRET"] = json.loads(done.stdout)["secret"]
        ran.append(command.split()[0:3])
    assert ["openssl", "cmp", "-cmd"] in ran and "SECRET" in environment
    outputs = {p.name for p in directory.iterdir()}
    assert {"root.pem", "device.pem", "next.pem", "capubs.pem", "chain.pem", "ra.pem",
            "unit.pem"} <= outputs
