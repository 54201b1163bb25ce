"""`iotpki crl publish|show` for operators (RFC 5280 §5), read back by `openssl crl`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from iotpki.app import PKI
from iotpki.settings import Settings
from tests.revocation.conftest import CA


def iotpki(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(settings.data_dir)]
    if settings.database_url:
        command += ["--database-url", settings.database_url]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_publish_then_show_a_crl(demo_pki: PKI, settings: Settings, tmp_path: Path) -> None:
    done = iotpki(settings, "crl", "publish", CA, "--json")
    assert done.returncode == 0, done.stderr
    published = json.loads(done.stdout)
    assert [c["kind"] for c in published] == ["full", "delta"]
    assert published[0]["number"] == published[1]["number"]
    out = tmp_path / "full.crl"
    done = iotpki(settings, "crl", "show", CA, "--json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["number"] == published[0]["number"]
    text = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(out), "-noout",
                           "-text"], capture_output=True, text=True, timeout=30, check=True)
    assert "X509v3 Freshest CRL" in text.stdout
    done = iotpki(settings, "crl", "publish", CA, "--delta", "--json")
    assert [c["kind"] for c in json.loads(done.stdout)] == ["delta"]


def test_show_before_any_publication_says_so(demo_pki: PKI, settings: Settings) -> None:
    done = iotpki(settings, "crl", "show", CA)
    assert done.returncode != 0 and "iotpki crl publish" in done.stderr
