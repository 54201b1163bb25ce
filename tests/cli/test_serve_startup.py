"""Issue 22 item 7: `iotpki serve` says what listens where, refuses to start when a port is
taken (exit 1, one line) rather than serve HTTP without HTTPS, and answers /healthz and
/readyz for orchestrators."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from iotpki.app import build_pki, http_app
from iotpki.cli.main import app
from iotpki.settings import Settings

PASSPHRASE = "serve startup test"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("serve") / "data"
    result = CliRunner().invoke(app, ["--data-dir", str(data), "init", "--demo"],
                                env={"IOTPKI_CA_PASSPHRASE": PASSPHRASE})
    assert result.exit_code == 0, result.output
    return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IOTPKI_")},
           "IOTPKI_CA_PASSPHRASE": PASSPHRASE, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "iotpki.cli.main", "--data-dir",
                             str(data_dir), "serve", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_busy_https_port_ends_serve_with_one_line(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        process = serve(data_dir, "--http-port", str(free_port()), "--https-port", str(busy))
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.splitlines() == [f"error: cannot listen on 127.0.0.1:{busy} (https): "
                                "Address already in use"]
    assert "iotpki serve:" not in out  # nothing announced, nothing started


def test_serve_announces_its_listeners_and_answers_health_probes(data_dir: Path) -> None:
    """It reads the public URL `iotpki config set` stored, and warns (issue 22 item 11)
    that certificates name an address its HTTP listener is not on."""
    port = free_port()
    stored = CliRunner().invoke(app, ["--data-dir", str(data_dir), "config", "set",
                                      "public-url", "http://pki.test:8080"],
                                env={"IOTPKI_CA_PASSPHRASE": PASSPHRASE, "IOTPKI_PUBLIC_URL": None})
    assert stored.exit_code == 0, stored.output
    process = serve(data_dir, "--http-port", str(port))
    try:
        assert process.stdout is not None
        announced = [process.stdout.readline() for _ in range(3)]
        assert announced[0].startswith(f"iotpki serve: data directory {data_dir}, database "
                                       "sqlite:///")
        assert announced[1].startswith(f"  http://127.0.0.1:{port}  OCSP /ocsp/<ca>")
        assert announced[2] == "  public URL in certificates: http://pki.test:8080\n"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    assert r.status == 200 and r.read() == b"ok\n"
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as ready:
            assert ready.status == 200 and ready.read() == b"ready\n"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)  # and close the pipes
    assert (f"warning: certificates name http://pki.test:8080 for CRLs and OCSP, but HTTP "
            f"listens on 127.0.0.1:{port}") in " ".join(err.split())


def test_readyz_is_503_without_the_database(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    pki = build_pki(Settings(data_dir=tmp_path / "data"))
    application = http_app(pki, background=False)

    async def probe(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)

    assert asyncio.run(probe("/readyz")).status_code == 200
    pki.database.dispose()
    for name in ("iotpki.db", "iotpki.db-wal", "iotpki.db-shm"):
        (tmp_path / "data" / name).unlink(missing_ok=True)
    answer = asyncio.run(probe("/readyz"))
    assert answer.status_code == 503 and answer.text == "database unavailable\n"
    assert asyncio.run(probe("/healthz")).status_code == 200
    pki.close()


@pytest.mark.parametrize(("public_url", "host", "port", "warned"), [
    ("http://127.0.0.1:8080", "127.0.0.1", 8080, False),
    ("http://localhost:8080", "127.0.0.1", 8080, False),
    ("http://pki.example:8080", "0.0.0.0", 8080, False),
    ("http://127.0.0.1:8080", "127.0.0.1", 9090, True),  # issue 22 item 11: :8080 whatever
    ("http://pki.example", "0.0.0.0", 8080, True),
    ("https://pki.example:8080", "0.0.0.0", 8080, True),
])
def test_serve_warns_when_certificates_name_another_address(
        public_url: str, host: str, port: int, warned: bool) -> None:
    from iotpki.cli.serve import public_url_mismatch

    assert (public_url_mismatch(public_url, host, port) is not None) is warned


def test_a_changed_public_url_republishes_the_crls_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 item 11, RFC 5280 §5.2.5: a CRL whose issuingDistributionPoint names the old
    URL is of another scope than the new CDP; `serve` replaces it before it starts."""
    from cryptography import x509

    from iotpki.cli.demo_setup import create_demo_hierarchy
    from iotpki.core.revocation.status import CRLKind

    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    old = build_pki(Settings(data_dir=tmp_path / "data", public_url="http://old.test:8080"))
    create_demo_hierarchy(old)
    old.crls.publish("operatorco-operations")
    old.close()
    new = build_pki(Settings(data_dir=tmp_path / "data", public_url="http://pki.test:9090"))
    assert new.crls.republish_out_of_scope() == ["operatorco-operations"]
    latest = new.crls.latest("operatorco-operations", CRLKind.FULL)
    assert latest is not None
    point = x509.load_der_x509_crl(latest.der).extensions.get_extension_for_class(
        x509.IssuingDistributionPoint).value
    assert [str(n.value) for n in point.full_name or ()] == [
        "http://pki.test:9090/crl/operatorco-operations.crl"]
    assert new.crls.republish_out_of_scope() == []  # once is enough
    new.close()
