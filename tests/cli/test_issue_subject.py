"""Issue 23 item 4: `cert issue --subject ""` asks for an empty subject (authorization
certificates); RFC 5280 §4.2.1.6: with an empty subject the SAN extension is critical."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from iotpki.cli.main import app
from tests.factories import make_csr


def test_an_empty_subject_is_issued_with_a_critical_san(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "subject test")
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(app, ["--data-dir", str(data), "init", "--demo"]).exit_code == 0
    csr, _ = make_csr("asks-for-a-name")
    (tmp_path / "grant.csr").write_bytes(csr)
    result = runner.invoke(app, [
        "--data-dir", str(data), "cert", "issue", "--ca", "operatorco-operations",
        "--profile", "authorization", "--csr", str(tmp_path / "grant.csr"), "--subject", "",
        "--san", "uri:urn:iotpki:grant:door-7", "--json"])
    assert result.exit_code == 0, result.output
    issued = json.loads(result.output)
    assert issued["subject"] == ""
    certificate = x509.load_pem_x509_certificate(issued["pem"].encode())
    assert len(certificate.subject) == 0
    assert certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).critical
    (tmp_path / "grant.pem").write_text(issued["pem"])
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "grant.pem"), "-noout",
                           "-subject", "-ext", "subjectAltName"], capture_output=True,
                          text=True, timeout=30, check=True).stdout
    assert text.splitlines()[0].rstrip() == "subject="
    assert "critical" in text and "urn:iotpki:grant:door-7" in text
