"""The whole story with three organizations: a chip from ChipCo, listed on a manifest,
becomes a DeviceCo device and then an OperatorCo operational identity in building 42."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.ca_certificate import CASpec
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import ConfigurationError, RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.core.supply_chain.manifests import ManifestRefused
from iotpki.wire.binding import EXAMPLE_OID, components_digest, decode_component_binding
from iotpki.wire.names import parse_subject
from tests.factories import domain_uri, make_csr
from tests.interop.peers import pkilint_errors, write_pem
from tests.supply_chain.story import (
    DEVICE_TARGET,
    DOMAIN,
    OPERATIONAL_TARGET,
    advance,
    enroll,
    make_chip,
    ship,
)


def refused(outcome: Issued | Rejected) -> RefusalReason:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


def test_chip_to_device_to_operational_identity(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 1)
    ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)

    outcome, key = enroll(demo_pki, chip, "sensor-0001", sans=[
        x509.UniformResourceIdentifier("urn:deviceco:sensor:0001")])
    device = advance(chip, outcome, key)
    assert device.chain[0].issuer == demo_pki.authorities.get("deviceco-devices").certificate.subject
    assert device.record.profile == "device"

    ship(demo_pki, "deviceco", "operatorco", [device], OPERATIONAL_TARGET)
    outcome, key = enroll(demo_pki, device, "sensor-0001")
    operational = advance(device, outcome, key)
    sans = operational.chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert domain_uri(DOMAIN) in sans.value
    assert operational.record.authority == "operatorco-operations"

    actions = [e.record.action for e in demo_pki.audit.entries(limit=None)]
    assert actions.count("manifest.import") == 2 and actions.count("manifest.export") == 2
    assert demo_pki.audit.problems()[1] == []


def test_chip_on_no_manifest_is_refused(demo_pki: PKI) -> None:
    listed, unlisted = make_chip(demo_pki, 1), make_chip(demo_pki, 2)
    ship(demo_pki, "chipco", "deviceco", [listed], DEVICE_TARGET)
    outcome, _ = enroll(demo_pki, unlisted, "sensor-0002")
    assert refused(outcome) is RefusalReason.NOT_REGISTERED
    last = demo_pki.audit.entries(limit=None)[-1]
    assert (last.record.action, last.record.outcome) == ("enrollment.authorize", "refused")
    assert last.record.details["presented"] == unlisted.record.fingerprint


def test_chip_signed_by_an_untrusted_ca_is_refused(demo_pki: PKI) -> None:
    demo_pki.authorities.ensure_organization("fakeco", "FakeCo", "t")
    spec = CASpec(parse_subject("CN=FakeCo Root,O=FakeCo"), timedelta(days=3650), 1)
    demo_pki.authorities.create("fakeco-root", "fakeco", "ec-p256", spec, "t")
    fake = make_chip(demo_pki, 9, authority="fakeco-root")
    # Even if an RA registers it by mistake, its chain leads to no anchor DeviceCo trusts.
    demo_pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=fake.record.fingerprint), "deviceco:ra")
    outcome, _ = enroll(demo_pki, fake, "sensor-0009")
    assert refused(outcome) is RefusalReason.UNTRUSTED_CHAIN


def test_replayed_manifest_is_refused_and_changes_nothing(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 1)
    signed = ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    before = len(demo_pki.registrations.find("deviceco"))
    with pytest.raises(ManifestRefused, match="replayed"):
        demo_pki.manifests.import_manifest("deviceco", signed, DEVICE_TARGET, "deviceco:ra")
    assert len(demo_pki.registrations.find("deviceco")) == before
    last = demo_pki.audit.entries(limit=None)[-1]
    assert last.record.outcome == "refused" and last.record.details["reason"] == "replayed"


def test_identity_is_consumed_once(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 1)
    ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    first, _ = enroll(demo_pki, chip, "sensor-0001")
    second, _ = enroll(demo_pki, chip, "sensor-0001")
    assert isinstance(first, Issued)
    assert refused(second) is RefusalReason.REGISTRATION_CONSUMED


def test_revoked_component_is_refused(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 3)
    ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    demo_pki.revocation.revoke("chipco-components", chip.record.serial,
                               x509.ReasonFlags.key_compromise, "chipco:ra")
    outcome, _ = enroll(demo_pki, chip, "sensor-0003")
    assert refused(outcome) is RefusalReason.REVOKED


def test_possession_of_the_previous_key_is_required(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 1)
    ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    impostor = make_chip(demo_pki, 2)
    stolen = type(chip)(chip.name, impostor.key, chip.chain, chip.record)  # cert without its key
    outcome, _ = enroll(demo_pki, stolen, "sensor-0001")
    assert refused(outcome) is RefusalReason.POSSESSION_NOT_PROVEN


def test_domain_not_owned_by_the_operator_is_refused(demo_pki: PKI) -> None:
    with pytest.raises(Exception, match="does not own domain"):
        demo_pki.registrations.create(RegistrationSpec(
            "operatorco", "operatorco-operations", "operational",
            RegistrationMethod.ONE_TIME_SECRET, domain="building-7.other.example"), "ra")
    csr, _ = make_csr("sensor-x", [domain_uri("building-7.other.example")])
    outcome = demo_pki.issuance.issue(IssuanceRequest("operatorco-operations", "operational",
                                                      csr, "t"))
    assert refused(outcome) is RefusalReason.DOMAIN_NOT_OWNED
    demo_pki.organizations.add_domain("deviceco", "lab.deviceco.example", "t")
    csr, _ = make_csr("sensor-x", [domain_uri("lab.deviceco.example")])
    outcome = demo_pki.issuance.issue(IssuanceRequest("operatorco-operations", "operational",
                                                      csr, "t"))
    assert refused(outcome) is RefusalReason.DOMAIN_NOT_OWNED  # owned, but by someone else


def test_device_certificate_commits_to_its_components(demo_pki: PKI, tmp_path: Path) -> None:
    # As an operator would in profiles.yaml: bind device certificates to their components.
    demo_pki.profiles["device"] = replace(demo_pki.profiles["device"],
                                          component_binding_oid=EXAMPLE_OID)
    main_chip, radio_chip = make_chip(demo_pki, 1), make_chip(demo_pki, 2)
    ship(demo_pki, "chipco", "deviceco", [main_chip, radio_chip], DEVICE_TARGET)
    device = demo_pki.devices.build(
        "deviceco", "sensor-0001", [main_chip.record.fingerprint, radio_chip.record.fingerprint],
        "deviceco:assembly-line")
    outcome, _ = enroll(demo_pki, main_chip, "sensor-0001")
    assert isinstance(outcome, Issued)
    committed = decode_component_binding(outcome.certificate, EXAMPLE_OID)
    assert committed == device.component_digest == components_digest(
        [radio_chip.record.fingerprint, main_chip.record.fingerprint])
    assert demo_pki.devices.get(device.id).components == tuple(sorted(
        [main_chip.record.fingerprint, radio_chip.record.fingerprint]))
    assert pkilint_errors(write_pem(tmp_path / "device.pem", [outcome.certificate])) == []


def test_a_device_cannot_be_built_from_unknown_components(demo_pki: PKI) -> None:
    with pytest.raises(ConfigurationError, match="on no manifest or registration"):
        demo_pki.devices.build("deviceco", "sensor-x", ["ab" * 32], "deviceco:assembly-line")
