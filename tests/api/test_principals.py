"""Principals: the CLI prints an API key once and stores only its hash; creations and
revocations are audited; certificate bindings authenticate only what they name."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import AuthenticationError, ConfigurationError, NotFoundError
from iotpki.core.integration.principal import Role
from iotpki.core.integration.principal_service import PrincipalService
from iotpki.core.outcomes import Issued
from tests.api.conftest import issue_operational
from tests.factories import make_csr
from tests.servers import ManualClock
from tests.test_cli import CLI


@pytest.fixture
def cli(tmp_path: Path, database_url: str | None) -> CLI:
    return CLI(tmp_path / "data", database_url)


def test_cli_creates_lists_and_revokes(cli: CLI, tmp_path: Path) -> None:
    cli.run("init", "--demo", "--json")
    created = cli.json("principal", "create", "--org", "operatorco", "--role", "registrar",
                       "--name", "crm")
    assert isinstance(created, dict)
    key = created["api_key"]
    assert key.startswith(f"iotpki_{created['id']}_")
    listed = cli.json("principal", "list", "--org", "operatorco")
    assert isinstance(listed, list) and [p["id"] for p in listed] == [created["id"]]
    assert "api_key" not in listed[0] and key not in str(listed)
    if cli.env.get("IOTPKI_DATABASE_URL") is None:
        with sqlite3.connect(tmp_path / "data" / "iotpki.db") as db:
            dump = "\n".join(db.iterdump())
        assert key.split("_", 2)[2] not in dump  # the secret itself is stored nowhere
    revoked = cli.json("principal", "revoke", created["id"])
    assert isinstance(revoked, dict) and revoked["revoked_at"] is not None
    cli.run("principal", "revoke", created["id"], expect=1)  # already revoked: a conflict
    cli.run("principal", "create", "--org", "nowhere", "--role", "admin", "--name", "x",
            expect=1)


def test_creation_and_revocation_are_audited(demo_pki: PKI) -> None:
    created = demo_pki.principals.create_api_key("chipco", Role.OPERATOR, "factory", "someone")
    demo_pki.principals.revoke(created.principal.id, "someone-else")
    entries = [e.record for e in demo_pki.audit.entries(limit=None)
               if e.record.target == created.principal.id]
    assert [(r.action, r.actor) for r in entries] == [("principal.create", "someone"),
                                                      ("principal.revoke", "someone-else")]
    assert created.api_key is not None
    assert all(created.api_key.split("_", 2)[2] not in str(r.details) for r in entries)


def test_api_keys_authenticate_exactly(demo_pki: PKI) -> None:
    key = demo_pki.principals.create_api_key("chipco", Role.ADMIN, "a", "t").api_key
    assert key is not None
    assert demo_pki.principals.authenticate_key(key).organization == "chipco"
    prefix, principal_id, secret = key.split("_", 2)
    for wrong in (f"{prefix}_{principal_id}_{secret}x", f"{prefix}_ffff_{secret}", "iotpki__",
                  "token"):
        with pytest.raises(AuthenticationError):
            demo_pki.principals.authenticate_key(wrong)


def test_certificate_bindings(demo_pki: PKI) -> None:
    pki = demo_pki
    pki.principals.create_certificate_principal("operatorco", Role.AUDITOR, "gw", "t",
                                                subject="CN=gateway",
                                                authority="operatorco-operations")
    # A subject binding accepts the operator's api-client certificates (docs/security.md).
    issued = pki.issuance.issue(IssuanceRequest("operatorco-operations", "api-client",
                                                make_csr("gateway")[0], "cli", method="cli"))
    assert isinstance(issued, Issued)
    record = issued.record
    assert pki.principals.authenticate_certificate(record.certificate).name == "gw"
    # Same subject, another CA (another organization's): not this principal.
    other = pki.issuance.issue(IssuanceRequest("deviceco-devices", "device",
                                               make_csr("gateway")[0], "t"))
    assert isinstance(other, Issued)
    with pytest.raises(AuthenticationError):
        pki.principals.authenticate_certificate(other.certificate)
    fingerprint = record.certificate.fingerprint(hashes.SHA256()).hex()
    pki.principals.create_certificate_principal("operatorco", Role.OPERATOR, "fp", "t",
                                                fingerprint=fingerprint)
    pki.revocation.revoke(record.authority, record.serial, x509.ReasonFlags.superseded, "t")
    with pytest.raises(AuthenticationError, match="revoked"):
        pki.principals.authenticate_certificate(record.certificate)


def test_expired_certificate_does_not_authenticate(demo_pki: PKI) -> None:
    record = issue_operational(demo_pki, "old")
    demo_pki.principals.create_certificate_principal(
        "operatorco", Role.AUDITOR, "old", "t", fingerprint=record.fingerprint)
    later = ManualClock(record.not_after + timedelta(days=1))
    principals = PrincipalService(demo_pki.database.unit_of_work, later)
    with pytest.raises(AuthenticationError, match="not valid now"):
        principals.authenticate_certificate(record.certificate)


def test_bindings_must_name_something_of_the_organization(demo_pki: PKI) -> None:
    with pytest.raises(ConfigurationError):
        demo_pki.principals.create_certificate_principal("operatorco", Role.ADMIN, "x", "t")
    with pytest.raises(ConfigurationError):
        demo_pki.principals.create_certificate_principal(
            "operatorco", Role.ADMIN, "x", "t", subject="CN=x", authority="chipco-components")
    with pytest.raises(NotFoundError):
        demo_pki.principals.create_api_key("nobody", Role.ADMIN, "x", "t")
