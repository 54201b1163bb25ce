"""Issue 23 item 6: `iotpki fleet simulate` drives a deployment with `--url` and `--api-key`
alone: the registrations are made through its REST API (not in a local store: the command
runs on a data directory that does not exist), then each virtual device enrolls and renews
against the module's real `iotpki serve`, through the command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iotpki.cli.main import app
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.integration.principal import Role
from tests.agent.conftest import CA, Servers
from tests.conftest import last_audit_seq

DEVICES = 10


def registrar_key(servers: Servers) -> tuple[str, str]:
    """(API key, audit actor) of an OperatorCo registrar."""
    created = servers.pki.principals.create_api_key("operatorco", Role.REGISTRAR, "fleet test",
                                                    "test")
    assert created.api_key is not None
    return created.api_key, created.principal.actor


def fleet(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["--data-dir", str(tmp_path / "nowhere"), "fleet", "simulate", *args],
        env={"IOTPKI_DATA_DIR": None, "IOTPKI_DATABASE_URL": None, "IOTPKI_API_KEY": None})
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("protocol", ["cmp", "est"])
def test_devices_registered_through_the_api_enroll_and_renew(
        servers: Servers, protocol: str, tmp_path: Path) -> None:
    key, actor = registrar_key(servers)
    before = len(_fleet_certificates(servers))  # the module's server is shared
    start = last_audit_seq(servers.pki)
    code, out, err = fleet(
        tmp_path, "--url", servers.https_url, "--api-key", key, "--protocol", protocol,
        "--devices", str(DEVICES), "--concurrency", "4", "--seed", "1", "--json",
        "--tls-ca", str(servers.pki.settings.data_dir / "tls" / "client-cas.pem"))
    assert code == 0, (out, err)
    report = json.loads(out)
    assert (report["succeeded"], report["failed"]) == (DEVICES, 0), report["errors"]
    assert report["authority"] == CA  # the organization's only issuing CA, found by the API
    # CMP on the plain-HTTP listener the CA certificate's public URL names; EST on --url.
    assert report["protocol_url"] == (f"{servers.http_url}/.well-known/cmp"
                                      if protocol == "cmp" else servers.https_url)
    assert set(report["latency_ms"]) == {"enroll", "renew"}
    # One enrollment and one renewal per device, from registrations the API principal made.
    assert len(_fleet_certificates(servers)) == before + 2 * DEVICES
    made = [e.record for e in servers.pki.audit.entries(after=start, limit=None)
            if e.record.action == "registration.create"]
    assert len(made) == DEVICES and {r.actor for r in made} == {actor}
    assert not (tmp_path / "nowhere").exists()


def test_a_wrong_api_key_ends_the_run_in_one_line(servers: Servers, tmp_path: Path) -> None:
    code, _, err = fleet(
        tmp_path, "--url", servers.https_url, "--api-key", "iotpki_nobody_wrong",
        "--tls-ca", str(servers.pki.settings.data_dir / "tls" / "client-cas.pem"))
    assert code == 1
    assert err.count("\n") == 1 and "HTTP 401" in err, err


def _fleet_certificates(servers: Servers) -> list[CertificateRecord]:
    issued = servers.pki.certificates.find(CertificateQuery(authority=CA, limit=10000))
    return [r for r in issued if "fleet-" in r.subject]
