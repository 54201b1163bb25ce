"""Posture checks (`core.lifecycle.posture`, the console's screen 8), on both databases:
each check finds what it should in OperatorCo's fleet and nothing of another
organization's; a renewal clears an expiry finding. Certificates the issuance policy no
longer issues (a weak key, a leaf outliving its CA, another owner's domain) are stored as
a store migrated from an older policy would hold them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import Purpose
from iotpki.core.lifecycle.posture import PostureChecks
from iotpki.core.outcomes import Issued
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.wire.names import parse_subject
from iotpki.wire.possession import sign_possession
from tests.api.conftest import OTHER, OWN, issue_operational
from tests.factories import domain_uri, make_csr
from tests.lifecycle.fleet import Fleet, add_organization, operational_device
from tests.supply_chain.story import DOMAIN


def legacy(pki: PKI, authority: str, name: str, key: Any, not_after: datetime,
           sans: tuple[x509.GeneralName, ...] = (), device: str | None = None) -> CertificateRecord:
    """A certificate of `authority` stored as an older policy left it (signed by a key of
    the test's, which no check reads), linked to `device` as its operational identity."""
    now = pki.clock.now()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(pki.authorities.get(authority).certificate.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=1)).not_valid_after(not_after))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
    certificate = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    record = CertificateRecord.issued(certificate, subject, sans, authority=authority,
                                      profile="operational", issued_at=now)
    with pki.database.unit_of_work() as uow:
        uow.certificates.add(record)
        if device is not None:
            uow.devices.link(device, record.fingerprint, "operational", now)
        uow.commit()
    return record


def reuse_key(pki: PKI, fleet: Fleet, key: Any) -> None:
    """`fleet`'s device renews its operational identity onto another device's key."""
    name = fleet.operational.record.subject.split("=", 1)[1]
    csr, _ = make_csr(name, [domain_uri(DOMAIN)], key=key)
    outcome = pki.enrollment.enroll(EnrollmentRequest(
        csr=csr, requester=f"device:{name}", client_chain=fleet.operational.chain,
        possession_signature=sign_possession(fleet.operational.key, csr)),
        "current-certificate")
    assert isinstance(outcome, Issued), outcome



def test_every_check_finds_its_case_and_only_the_organizations(demo_pki: PKI) -> None:
    pki = demo_pki
    first, second = operational_device(pki, 21), operational_device(pki, 22)
    reuse_key(pki, second, first.operational.key)
    weak = legacy(pki, "operatorco-operations", "sensor-weak",
                  rsa.generate_private_key(65537, 1024), pki.clock.now() + timedelta(days=60))
    ca = pki.authorities.get("operatorco-operations")
    outliving = legacy(pki, "operatorco-operations", "sensor-outliving",
                       ec.generate_private_key(ec.SECP256R1()), ca.not_after + timedelta(days=5))
    add_organization(pki, "thirdco", "plant.thirdco.example")
    foreign = legacy(pki, "operatorco-operations", "sensor-foreign",
                     ec.generate_private_key(ec.SECP256R1()), pki.clock.now() + timedelta(days=80),
                     (domain_uri("plant.thirdco.example"),), device=first.device_id)
    csr, _ = make_csr("sensor-expiring", [domain_uri(DOMAIN)])
    expiring = pki.issuance.issue(IssuanceRequest(
        "operatorco-operations", "operational", csr, "test",
        not_after=pki.clock.now() + timedelta(days=10)))
    assert isinstance(expiring, Issued)

    pki.service_certificates.current("operatorco-operations", Purpose.OCSP_SIGNING)
    checks = PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles)
    report = checks.report(OWN)
    [shared] = report.shared_keys.items
    assert {d.id for d in shared.devices} == {first.device_id, second.device_id}
    assert shared.key_id == first.operational.record.key_facts.key_id
    assert [(c.serial_hex, c.key) for c in report.weak_keys.items] == [
        (weak.serial_hex, "RSA 1024")]
    assert expiring.record.serial_hex in {c.serial_hex for c in report.unrenewed.items}
    # the service replaces its own certificates (the OCSP responder's lives 30 days)
    assert "ocsp-responder" not in {c.profile for c in report.unrenewed.items}
    [outlived] = report.outlived
    assert (outlived.authority, outlived.leaves_after, outlived.last_leaf) == (
        "operatorco-operations", 1, outliving.not_after)
    [domain] = report.foreign_domains.items
    assert (domain.device.id, domain.domain, domain.domain_owner) == (
        first.device_id, "plant.thirdco.example", "thirdco")
    assert foreign.domain == "plant.thirdco.example"

    other = checks.report(OTHER)
    assert first.device_id not in {d.id for f in other.shared_keys.items for d in f.devices}
    assert not {c.serial_hex for c in (*other.weak_keys.items, *other.unrenewed.items)} & {
        weak.serial_hex, expiring.record.serial_hex}
    assert not other.foreign_domains.items
    assert "operatorco-operations" not in {o.authority for o in other.outlived}

    # A renewal (a later certificate, same authority and subject) clears the expiry finding.
    csr, _ = make_csr("sensor-expiring", [domain_uri(DOMAIN)])
    assert isinstance(pki.issuance.issue(IssuanceRequest(
        "operatorco-operations", "operational", csr, "test")), Issued)
    assert expiring.record.serial_hex not in {
        c.serial_hex for c in checks.report(OWN).unrenewed.items}


def test_the_key_facts_of_a_record_match_its_certificate(demo_pki: PKI) -> None:
    record = issue_operational(demo_pki, "sensor-facts")
    stored = demo_pki.certificates.get(record.authority, record.serial)
    assert stored is not None and stored.key == record.key_facts
    assert stored.key is not None and (stored.key.algorithm, stored.key.bits) == ("ec", 256)
    assert not stored.key.weak and stored.domain == DOMAIN
    parse_subject(stored.subject)  # a stored record round-trips
