"""Screen 3, one certificate: fields, chain, the live OCSP status, downloads, and revoke, hold
and release from the console (roles, tenants, CSRF)."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.integration.principal import Role
from tests.api.conftest import OTHER, OWN, World, issue_operational
from tests.conftest import last_audit_seq
from tests.console.conftest import signed_in


def path(record: Any) -> str:
    return f"/console/certificates/{record.authority}/{record.serial_hex}"


def test_fields_chain_live_status_and_downloads(world: World, console_app: Any) -> None:
    record = world.certificate
    client = signed_in(console_app, world, OWN, Role.AUDITOR)
    try:
        page = client.get(path(record))
        assert page.status_code == 200
        assert record.fingerprint in page.text and record.subject in page.text
        assert 'id="ocsp-status">good<' in page.text
        assert 'id="revoke"' not in page.text  # an auditor is offered no action
        pem = client.get(path(record) + "/download/pem")
        assert x509.load_pem_x509_certificate(pem.content).serial_number == record.serial
        assert client.get(path(record) + "/download/der").content == record.der
        bundle = pkcs7.load_der_pkcs7_certificates(client.get(path(record) + "/download/p7c").content)
        chain = world.pki.authorities.get(record.authority).full_chain
        # certificates is a SET OF (RFC 5652 §5.1): any order
        assert {c.serial_number for c in bundle} == {record.serial, *(c.serial_number
                                                                     for c in chain)}
        assert client.get(path(record) + "/download/exe").status_code == 404
        assert client.get(f"/console/certificates/{record.authority}/zz").status_code == 404
    finally:
        client.close()


def test_hold_release_and_revoke(world: World, console_app: Any) -> None:
    record = issue_operational(world.pki, "sensor-console-hold")
    client = signed_in(console_app, world, OWN, Role.OPERATOR)
    try:
        csrf = client.csrf(path(record))
        start = last_audit_seq(world.pki)
        assert client.post(path(record) + "/status", {"action": "hold"}).status_code == 403
        assert client.post(path(record) + "/status",
                           {"action": "hold", "csrf": csrf}).status_code == 303
        held = client.get(path(record)).text
        assert 'id="ocsp-status">revoked (certificateHold)<' in held
        assert "The certificate is on hold." not in held  # only after the redirect's link
        assert client.post(path(record) + "/status",
                           {"action": "release", "csrf": csrf}).status_code == 303
        assert 'id="ocsp-status">good<' in client.get(path(record)).text
        bad = client.post(path(record) + "/status",
                          {"action": "revoke", "reason": "bored", "csrf": csrf})
        assert bad.status_code == 422
        assert client.post(path(record) + "/status", {
            "action": "revoke", "reason": "keyCompromise", "csrf": csrf}).status_code == 303
        final = world.pki.certificates.get(record.authority, record.serial)
        assert final.status is CertificateStatus.REVOKED
        assert final.revocation_reason == "keyCompromise"
        again = client.post(path(record) + "/status", {"action": "hold", "csrf": csrf})
        assert again.status_code == 409
        actions = [e.record.action for e in world.pki.audit.entries(start, None)
                   if e.record.outcome == "success" and e.record.actor.endswith(f"@{OWN}")]
        assert actions == ["certificate.hold", "certificate.release", "certificate.revoke"]
    finally:
        client.close()


def test_another_organization_and_an_auditor_change_nothing(world: World,
                                                          console_app: Any) -> None:
    record = world.certificate
    other = signed_in(console_app, world, OTHER, Role.ADMIN)
    auditor = signed_in(console_app, world, OWN, Role.AUDITOR)
    try:
        assert other.get(path(record)).status_code == 404
        assert other.get(path(record) + "/download/pem").status_code == 404
        assert other.post(path(record) + "/status",
                          {"action": "hold", "csrf": other.csrf()}).status_code == 404
        assert auditor.post(path(record) + "/status",
                            {"action": "hold", "csrf": auditor.csrf()}).status_code == 403
        assert world.pki.certificates.get(record.authority, record.serial).status \
            is CertificateStatus.GOOD
    finally:
        other.close()
        auditor.close()
