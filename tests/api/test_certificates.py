"""Certificates over the API: filters (on SQLite and PostgreSQL), show, revoke, bulk revoke
in one transaction, and the revocation facts the CRL and OCSP then publish."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.integration.principal import Role
from iotpki.core.revocation.status import CRLKind
from tests.api.conftest import OWN, World, issue_operational

CERTS = "/api/v1/certificates"


def test_filters_combine_and_stay_in_the_organization(world: World) -> None:
    key = world.key(OWN, Role.AUDITOR)
    second = issue_operational(world.pki, "sensor-2")
    world.pki.revocation.revoke(second.authority, second.serial, x509.ReasonFlags.superseded,
                                "test")
    listed = world.client.get(CERTS, key).json()["items"]
    assert {world.certificate.serial_hex, second.serial_hex} <= {c["serial"] for c in listed}
    assert {c["authority"] for c in listed} <= {"operatorco-root", "operatorco-operations"}
    revoked = world.client.get(CERTS, key, params={"status": "revoked"}).json()["items"]
    assert [c["serial"] for c in revoked] == [second.serial_hex]
    soon = (world.certificate.not_after + timedelta(seconds=1)).isoformat()
    expiring = world.client.get(CERTS, key, params={
        "expiring_before": soon, "profile": "operational", "status": "good",
        "authority": "operatorco-operations", "subject": "sensor-1"}).json()["items"]
    assert [c["serial"] for c in expiring] == [world.certificate.serial_hex]
    early = (world.certificate.not_before - timedelta(days=1)).isoformat()
    assert world.client.get(CERTS, key, params={"expiring_before": early}).json()["items"] == []


def test_show_gives_the_pem(world: World) -> None:
    c = world.certificate
    response = world.client.get(f"{CERTS}/{c.authority}/{c.serial_hex}", world.key(OWN, Role.AUDITOR))
    assert response.status_code == 200
    pem = response.json()["pem"].encode()
    assert x509.load_pem_x509_certificate(pem).serial_number == c.serial


def test_revoke_then_again_is_a_conflict(world: World) -> None:
    c, key = world.certificate, world.key(OWN, Role.OPERATOR)
    url = f"{CERTS}/{c.authority}/{c.serial_hex}/revoke"
    first = world.client.post(url, key, json={"reason": "keyCompromise",
                                              "invalidity_date": "2026-01-01T00:00:00Z"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "revoked"
    assert first.json()["revocation_reason"] == "keyCompromise"
    again = world.client.post(url, key, json={"reason": "keyCompromise"})
    assert again.status_code == 409
    assert again.json()["type"] == "urn:iotpki:problem:conflict"
    bad = world.client.post(url, key, json={"reason": "because"})
    assert bad.status_code == 422


def test_bulk_revoke_by_filter_in_one_transaction(world: World) -> None:
    pki = world.pki
    others = [issue_operational(pki, f"sensor-{i}") for i in range(2, 6)]
    held = others[0]
    pki.revocation.revoke(held.authority, held.serial, x509.ReasonFlags.certificate_hold, "test")
    already = others[1]
    pki.revocation.revoke(already.authority, already.serial, x509.ReasonFlags.superseded, "test")
    pending = [r for r in pki.certificates.find(CertificateQuery(
        authority="operatorco-operations", profile="operational", limit=None))
        if r.status is not CertificateStatus.REVOKED]
    assert len(pending) == 5  # world's, the world device's, 2 good and 1 held of these
    counter_before = _counter(world)
    response = world.client.post(f"{CERTS}/bulk-revoke", world.key(OWN, Role.OPERATOR), json={
        "filter": {"profile": "operational", "authority": "operatorco-operations"},
        "reason": "cessationOfOperation"})
    assert response.status_code == 200, response.text
    assert response.json()["revoked"] == len(pending)  # the revoked one is left alone
    for record in (world.certificate, *others):
        current = pki.certificates.get(record.authority, record.serial)
        assert current.status is CertificateStatus.REVOKED
    assert pki.certificates.get(already.authority, already.serial).revocation_reason == "superseded"
    assert pki.certificates.get(held.authority, held.serial).revoked_at is not None
    assert _counter(world) == counter_before + 1  # one change for the delta CRL
    audited = [e for e in pki.audit.entries(limit=None) if e.record.details.get("bulk")]
    assert len(audited) == len(pending)
    assert all(e.record.actor.endswith(f"@{OWN}") for e in audited)
    published = pki.crls.publish("operatorco-operations", [CRLKind.FULL])[0]
    serials = {entry.serial_number for entry in x509.load_der_x509_crl(published.der)}
    assert {world.certificate.serial, *(o.serial for o in others)} <= serials


def test_bulk_revoke_needs_a_filter(world: World) -> None:
    response = world.client.post(f"{CERTS}/bulk-revoke", world.key(OWN, Role.ADMIN),
                                 json={"filter": {}, "reason": "superseded"})
    assert response.status_code == 422
    assert "at least one filter" in response.json()["detail"]
    assert world.pki.certificates.get(world.certificate.authority,
                                      world.certificate.serial).status is CertificateStatus.GOOD


def _counter(world: World) -> int:
    with world.pki.database.unit_of_work() as uow:
        return uow.revocation.counter("operatorco-operations")
