"""Issue 23 item 2: `iotpki manifest export` lists component (and device) identities only,
never the service's own certificates (manifest signer, OCSP responder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from iotpki.app import build_pki
from iotpki.cli.main import app
from iotpki.core.ca.ports import Purpose
from iotpki.settings import Settings
from iotpki.wire.manifest import decode_manifest, open_signed_manifest
from tests.factories import make_csr


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "manifest test")


def test_export_lists_the_chips_and_nothing_of_the_service(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(app, ["--data-dir", str(data), "init", "--demo"]).exit_code == 0
    csr, _ = make_csr("chip-0001")
    (tmp_path / "chip.csr").write_bytes(csr)
    issued = runner.invoke(app, ["--data-dir", str(data), "cert", "issue", "--ca",
                                 "chipco-components", "--profile", "component", "--csr",
                                 str(tmp_path / "chip.csr"), "--json"])
    assert issued.exit_code == 0, issued.output
    # what a running server adds: a delegated OCSP responder certificate from the same CA
    pki = build_pki(Settings.from_environment(data))
    responder = pki.service_certificates.current("chipco-components", Purpose.OCSP_SIGNING)
    pki.close()
    assert responder is not None
    for attempt in range(2):  # the second run has a manifest signer issued by the first
        out = tmp_path / f"tray-{attempt}.der"
        result = runner.invoke(app, ["--data-dir", str(data), "manifest", "export", "--from",
                                     "chipco", "--to", "deviceco", "--ca", "chipco-components",
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        manifest = decode_manifest(open_signed_manifest(out.read_bytes()).document)
        assert [e.serial for e in manifest.entries] == [_serial(issued.output)]


def test_a_service_profile_or_certificate_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(app, ["--data-dir", str(data), "init", "--demo"]).exit_code == 0
    pki = build_pki(Settings.from_environment(data))
    responder = pki.service_certificates.current("chipco-components", Purpose.OCSP_SIGNING)
    pki.close()
    base = ["--data-dir", str(data), "manifest", "export", "--from", "chipco", "--to",
            "deviceco", "--ca", "chipco-components", "--out", str(tmp_path / "m.der")]
    refused = runner.invoke(app, [*base, "--profile", "ocsp-responder"])
    assert "issues no supply-chain identity" in str(refused.exception)
    fingerprint = _fingerprint(responder.certificate.public_bytes(Encoding.DER))
    refused = runner.invoke(app, [*base, "--fingerprint", fingerprint])
    assert refused.exit_code != 0  # not an identity (or not even in the certificate table)
    assert not (tmp_path / "m.der").exists()


def _serial(output: str) -> str:
    import json

    return str(json.loads(output)["serial"])


def _fingerprint(der: bytes) -> str:
    import hashlib

    return hashlib.sha256(der).hexdigest()
