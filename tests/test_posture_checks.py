"""Posture checks (`core.lifecycle.posture`, the console's screen 8), on both databases:
each check finds what it should in OperatorCo's fleet and nothing of another
organization's; a renewal clears an expiry finding. Certificates the issuance policy no
longer issues (a weak key, a leaf outliving its CA, another owner's domain) are stored as
a store migrated from an older policy would hold them."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.key_facts import KeyFacts
from iotpki.core.ca.ports import Purpose
from iotpki.core.lifecycle.device import Device, DeviceState
from iotpki.core.lifecycle.posture import PostureChecks
from iotpki.core.outcomes import Issued
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.store import posture as store_posture
from iotpki.store.schema import organizations, shared_keys
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


def device(pki: PKI, owner: str, name: str) -> str:
    """A device of DeviceCo's make owned by `owner`, with no identity yet."""
    now, component = pki.clock.now(), os.urandom(32).hex()
    made = Device(str(uuid.uuid4()), OTHER, name, (component,), bytes.fromhex(component), now,
                  DeviceState.ACTIVE, owner, now)
    with pki.database.unit_of_work() as uow:
        uow.devices.add(made)
        uow.commit()
    return made.id


def holding(pki: PKI, owner: str, name: str, key: Any, days: int = 200) -> str:
    """A device of `owner` whose operational identity has `key`."""
    device_id = device(pki, owner, name)
    legacy(pki, "operatorco-operations", name, key, pki.clock.now() + timedelta(days=days),
           device=device_id)
    return device_id


def recorded(pki: PKI) -> set[tuple[str, str]]:
    with pki.database.engine.connect() as conn:
        rows = conn.execute(select(organizations.c.label, shared_keys.c.key_id).join(
            organizations, organizations.c.id == shared_keys.c.owner_id)).all()
    return {(label, key_id) for label, key_id in rows}


def key_id(key: Any) -> str:
    return KeyFacts.of(key.public_key()).key_id



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


def test_a_key_is_shared_on_two_devices_of_one_owner_not_by_renewals(demo_pki: PKI) -> None:
    pki = demo_pki
    checks = PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles)
    renewed = ec.generate_private_key(ec.SECP256R1())
    one = holding(pki, OWN, "sensor-renewing", renewed)
    for n in range(3):  # the same device renewing with the same key: not shared
        legacy(pki, "operatorco-operations", "sensor-renewing", renewed,
               pki.clock.now() + timedelta(days=300 + n), device=one)
    # One device of each organization with the same key: neither owner has two.
    across = ec.generate_private_key(ec.SECP256R1())
    holding(pki, OWN, "sensor-across", across)
    theirs = holding(pki, OTHER, "their-sensor", across)
    assert recorded(pki) == set()
    assert checks.report(OWN).shared_keys.items == ()
    assert checks.report(OTHER).shared_keys.items == ()

    # A second device of OTHER takes the key: OTHER's finding, never OWN's device in it.
    second = holding(pki, OTHER, "their-second", across)
    assert recorded(pki) == {(OTHER, key_id(across))}
    [finding] = checks.report(OTHER).shared_keys.items
    assert {d.id for d in finding.devices} == {theirs, second}
    assert checks.report(OWN).shared_keys.items == ()

    # An owner change is checked again for both owners.
    with pki.database.unit_of_work() as uow:
        assert uow.devices.move(second, DeviceState.ACTIVE, DeviceState.ACTIVE, OWN,
                                pki.clock.now())
        uow.commit()
    assert recorded(pki) == {(OWN, key_id(across))}
    assert checks.report(OTHER).shared_keys.items == ()
    [finding] = checks.report(OWN).shared_keys.items
    assert {d.name for d in finding.devices} == {"sensor-across", "their-second"}


def test_a_fleet_on_a_few_pooled_keys_shows_a_bounded_first_page(
        demo_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every device on one of three keys: the first page stops at `limit` keys, each with
    the first devices found and "more", not every holder."""
    pki = demo_pki
    monkeypatch.setattr(store_posture, "HOLDERS_COUNTED", 3)
    pool = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    for n in range(15):
        holding(pki, OWN, f"sensor-pooled-{n:02d}", pool[n % 3])
    assert recorded(pki) == {(OWN, key_id(k)) for k in pool}
    report = PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles).report(
        OWN, limit=2)
    assert report.shared_keys.more and len(report.shared_keys.items) == 2
    assert [f.key_id for f in report.shared_keys.items] == sorted(key_id(k) for k in pool)[:2]
    for finding in report.shared_keys.items:
        assert len(finding.devices) == 3 and finding.more_devices
    # five devices per key, three shown: exactly three more would not be "more"
    monkeypatch.setattr(store_posture, "HOLDERS_COUNTED", 5)
    report = PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles).report(
        OWN, limit=5)
    assert not report.shared_keys.more and len(report.shared_keys.items) == 3
    assert all(len(f.devices) == 5 and not f.more_devices for f in report.shared_keys.items)


def test_expiring_unrenewed_certificates_come_soonest_first_across_authorities(
        demo_pki: PKI) -> None:
    pki = demo_pki
    now = pki.clock.now()
    key = ec.generate_private_key(ec.SECP256R1())
    soon = [legacy(pki, "operatorco-operations", f"sensor-soon-{n}", key,
                   now + timedelta(days=20 - n)) for n in range(4)]
    # the soonest is renewed (a later certificate, same authority and subject)
    legacy(pki, "operatorco-operations", "sensor-soon-3", key, now + timedelta(days=300))
    on_root = legacy(pki, "operatorco-root", "sensor-on-root", key, now + timedelta(days=16.5))
    checks = PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles)
    report = checks.report(OWN, limit=2)
    assert [c.serial_hex for c in report.unrenewed.items] == [
        on_root.serial_hex, soon[2].serial_hex]
    assert report.unrenewed.more
    assert [c.serial_hex for c in checks.report(OWN).unrenewed.items] == [
        on_root.serial_hex, soon[2].serial_hex, soon[1].serial_hex, soon[0].serial_hex]


def test_leaves_outliving_their_authority_are_counted_up_to_a_bound(
        demo_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    from iotpki.core.lifecycle import posture

    pki = demo_pki
    monkeypatch.setattr(posture, "LEAVES_COUNTED", 2)
    ca = pki.authorities.get("operatorco-operations")
    key = ec.generate_private_key(ec.SECP256R1())
    leaves = [legacy(pki, "operatorco-operations", f"sensor-outliving-{n}", key,
                     ca.not_after + timedelta(days=5 + n)) for n in range(3)]
    checks = PostureChecks(pki.database.read_unit_of_work, pki.clock, pki.profiles)
    [outlived] = checks.report(OWN).outlived
    assert (outlived.leaves_after, outlived.more_leaves, outlived.last_leaf) == (
        2, True, leaves[-1].not_after)
    monkeypatch.setattr(posture, "LEAVES_COUNTED", 3)
    [outlived] = checks.report(OWN).outlived
    assert (outlived.leaves_after, outlived.more_leaves) == (3, False)


def test_two_links_of_one_key_at_once_are_seen_by_the_later(demo_pki: PKI) -> None:
    """PostgreSQL, read committed: device B's link of a key is made while device A's link
    of the same key is not committed yet. The key's advisory lock makes B's lookup wait for
    A's COMMIT and then see A's link, so the shared key is recorded."""
    pki = demo_pki
    if pki.database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: the second link starts after the first")
    key = ec.generate_private_key(ec.SECP256R1())
    first, second = device(pki, OWN, "racing-a"), device(pki, OWN, "racing-b")
    far = pki.clock.now() + timedelta(days=200)
    a, b = legacy(pki, "operatorco-operations", "racing-a", key, far), \
        legacy(pki, "operatorco-operations", "racing-b", key, far)
    linked, done = threading.Event(), threading.Event()

    def link_a() -> None:
        with pki.database.unit_of_work() as uow:
            uow.devices.link(first, a.fingerprint, "operational", pki.clock.now())
            linked.set()
            time.sleep(0.5)  # B links meanwhile, before this COMMIT
            uow.commit()
        done.set()

    racer = threading.Thread(target=link_a)
    racer.start()
    try:
        assert linked.wait(10)
        with pki.database.unit_of_work() as uow:
            uow.devices.link(second, b.fingerprint, "operational", pki.clock.now())
            uow.commit()
    finally:
        racer.join(10)
    assert done.is_set()
    assert recorded(pki) == {(OWN, key_id(key))}
