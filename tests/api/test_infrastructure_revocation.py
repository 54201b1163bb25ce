"""Infrastructure certificates cannot be revoked from under the server (issue 15 item 7),
on SQLite and PostgreSQL: a tenant's admin and operator try to revoke the OCSP responder,
the CMP protection certificate, the manifest signer and the HTTPS certificate through the
REST API, one by one and in bulk by profile; only the operator's console can."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.integration.principal import Role
from iotpki.core.outcomes import Issued
from iotpki.https_server import prepare_tls
from tests.api.conftest import OWN, World
from tests.factories import make_csr

CA = "operatorco-operations"
CERTS = "/api/v1/certificates"


def service_certificate(pki: PKI, profile: str) -> CertificateRecord:
    extra = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OperatorCo")]
    csr, _ = make_csr(f"{profile} {CA}", extra_subject=extra)
    outcome = pki.issuance.issue(IssuanceRequest(CA, profile, csr, profile, method="internal"))
    assert isinstance(outcome, Issued), outcome
    return outcome.record


def https_certificate(pki: PKI) -> CertificateRecord:
    """What `iotpki serve` presents: issued into `<data-dir>/tls/server.pem`."""
    files = prepare_tls(pki, ["localhost"])
    leaf = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    return pki.certificates.get_by_fingerprint(leaf.fingerprint(hashes.SHA256()).hex())


@pytest.fixture
def infrastructure(world: World) -> list[CertificateRecord]:
    pki = world.pki
    return [*(service_certificate(pki, p) for p in ("ocsp-responder", "cmp-protection",
                                                    "manifest-signer")), https_certificate(pki)]


def status(pki: PKI, record: CertificateRecord) -> CertificateStatus:
    return pki.certificates.get(record.authority, record.serial).status


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR])
def test_tenant_cannot_revoke_an_infrastructure_certificate(
        world: World, infrastructure: list[CertificateRecord], role: Role) -> None:
    for record in infrastructure:
        response = world.client.post(f"{CERTS}/{record.authority}/{record.serial_hex}/revoke",
                                     world.key(OWN, role), json={"reason": "keyCompromise"})
        assert response.status_code == 403, (record.profile, response.text)
        assert "infrastructure" in response.json()["detail"]
        assert status(world.pki, record) is CertificateStatus.GOOD


def test_bulk_revoke_by_profile_leaves_infrastructure_alone(
        world: World, infrastructure: list[CertificateRecord]) -> None:
    key = world.key(OWN, Role.OPERATOR)
    for profile in ("ocsp-responder", "cmp-protection", "manifest-signer", "service"):
        response = world.client.post(f"{CERTS}/bulk-revoke", key, json={
            "filter": {"profile": profile, "authority": CA}, "reason": "superseded"})
        assert response.status_code == 200, response.text
        assert response.json()["revoked"] == 0
    everything = world.client.post(f"{CERTS}/bulk-revoke", key, json={
        "filter": {"authority": CA}, "reason": "cessationOfOperation"})
    assert everything.status_code == 200 and everything.json()["revoked"] >= 1
    assert status(world.pki, world.certificate) is CertificateStatus.REVOKED  # a tenant's
    for record in infrastructure:
        assert status(world.pki, record) is CertificateStatus.GOOD, record.profile


def test_the_operator_revokes_one_and_the_service_is_told(
        world: World, infrastructure: list[CertificateRecord]) -> None:
    told: list[CertificateRecord] = []
    world.pki.revocation.on_infrastructure_revoked.append(told.append)
    responder = infrastructure[0]
    world.pki.revocation.revoke(responder.authority, responder.serial,
                                x509.ReasonFlags.key_compromise, "cli", operator=True)
    assert status(world.pki, responder) is CertificateStatus.REVOKED
    assert [r.fingerprint for r in told] == [responder.fingerprint]
