"""A service certificate the operator revokes is replaced at once (issue 15 item 7): in the
process that revoked it at once, and on another node (another PKI on the same database)
at its next check against the store, without ever signing with the revoked one again.
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.app import PKI, build_pki
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import Purpose
from iotpki.core.revocation.service import RevocationService
from iotpki.settings import Settings

CA = "operatorco-operations"
OWNERS = {Purpose.CMP_PROTECTION: CA, Purpose.KEY_DELIVERY: CA,
          Purpose.OCSP_SIGNING: CA, Purpose.MANIFEST_SIGNING: "operatorco",
          Purpose.SCEP_RA: "scep:components"}  # the RA certificate of /scep/components


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize("purpose", sorted(OWNERS, key=str))
def test_revoked_service_certificate_is_replaced(demo_pki: PKI, settings: Settings,
                                                 purpose: Purpose) -> None:
    owner = OWNERS[purpose]
    issuer = CA if purpose in (Purpose.MANIFEST_SIGNING, Purpose.SCEP_RA) else None
    old = demo_pki.service_certificates.current(owner, purpose, issuer).certificate
    other_node = build_pki(settings, migrate=False)
    try:
        assert other_node.service_certificates.current(owner, purpose, issuer).certificate == old
        record = demo_pki.certificates.get_by_fingerprint(fingerprint(old))
        demo_pki.revocation.revoke(record.authority, record.serial,
                                   x509.ReasonFlags.key_compromise, "cli", operator=True)
        new = demo_pki.service_certificates.current(owner, purpose, issuer).certificate
        assert new != old
        assert demo_pki.certificates.get_by_fingerprint(fingerprint(new)).status is \
            CertificateStatus.GOOD
        other_node.service_certificates.revalidate(owner, purpose)  # its 5 s check, now
        assert other_node.service_certificates.current(owner, purpose, issuer).certificate == new
    finally:
        other_node.close()
    said = [e.record for e in demo_pki.audit.entries(limit=None)
            if e.record.action == "service.certificate.replace"]
    assert [(s.target, s.details["revoked"]) for s in said] == [
        (f"{purpose.value}:{owner}", fingerprint(old))]


def test_a_node_that_finds_its_certificate_revoked_replaces_it(demo_pki: PKI,
                                                               settings: Settings) -> None:
    """Revoked where nobody replaced it (no listener: a bare revocation service): the node
    that finds it revoked at its next check issues the replacement itself."""
    node = build_pki(settings, migrate=False)
    try:
        old = node.service_certificates.current(CA, Purpose.CMP_PROTECTION).certificate
        record = demo_pki.certificates.get_by_fingerprint(fingerprint(old))
        RevocationService(demo_pki.database.unit_of_work, demo_pki.clock).revoke(
            record.authority, record.serial, x509.ReasonFlags.key_compromise, "cli")
        node.service_certificates.revalidate(CA, Purpose.CMP_PROTECTION)
        new = node.service_certificates.current(CA, Purpose.CMP_PROTECTION).certificate
        assert new != old
        assert demo_pki.certificates.get_by_fingerprint(fingerprint(new)).status is \
            CertificateStatus.GOOD
    finally:
        node.close()
