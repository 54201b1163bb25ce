"""RFC 9483 §4.1.1 ir signed by a certificate of a trusted previous stage (a manufacturer
or component certificate chaining to a supplier anchor the CA's organization trusts): it
needs a registration (a manifest entry) naming it only where the profile says so
(`previous_stage_needs_registration`, default true). Each case with body type, PKIStatus
and exact failInfo; nothing issued and the refusal audited when refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import Identity, Lab, audit_head, crmf, new_key, refusals_since, refused
from tests.supply_chain.story import make_chip

DEVICES = "devices"  # endpoint: deviceco-devices, profile device, previous-stage-certificate


def _chip(lab: Lab, number: int) -> Identity:
    chip = make_chip(lab.pki, number)
    return Identity(chip.key, chip.chain[0], chip.chain[1:])


def _ir(lab: Lab, identity: Identity, subject: str) -> bytes:
    return lab.signed(identity, "ir", crmf(new_key(), subject), implicit_confirm=True)


@pytest.fixture
def unregistered_stages(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = lab.pki.profiles["device"]
    monkeypatch.setitem(lab.pki.profiles, "device", dataclasses.replace(
        profile, previous_stage_needs_registration=False))


def test_s4_1_1_by_default_a_trusted_stage_needs_its_registration(lab: Lab) -> None:
    chip = _chip(lab, 301)
    seq = audit_head(lab)
    refused(lab, _ir(lab, chip, "CN=sensor-301"), "notAuthorized", body="ip", label=DEVICES)
    reasons = {r.details.get("reason") for r in refusals_since(lab, seq)}
    assert "not-registered" in reasons


def test_s4_1_1_where_the_profile_says_so_a_trusted_stage_enrolls_without_registration(
        lab: Lab, unregistered_stages: None) -> None:
    chip = _chip(lab, 302)
    reply = lab.post(_ir(lab, chip, "CN=sensor-302"), label=DEVICES)
    assert (reply.body, reply.status, reply.failures) == ("ip", 0, frozenset())
    certificate = reply.certificate()
    assert certificate.subject == parse_subject("CN=sensor-302")
    record = lab.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert (record.authority, record.profile) == ("deviceco-devices", "device")


def test_s4_1_1_without_registration_an_untrusted_stage_is_still_signer_not_trusted(
        lab: Lab, unregistered_stages: None) -> None:
    """A certificate naming ChipCo's CA as issuer but signed by a key of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    counterfeit = (x509.CertificateBuilder().subject_name(parse_subject("CN=chip-fake"))
                   .issuer_name(lab.pki.authorities.get("chipco-components").certificate.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  False).sign(key, hashes.SHA256()))
    fake = Identity(key, counterfeit, ())
    refused(lab, _ir(lab, fake, "CN=sensor-303"), "signerNotTrusted", label=DEVICES)


def test_s4_1_1_without_registration_the_profile_still_checks_the_request(
        lab: Lab, unregistered_stages: None) -> None:
    """The subject comes from the request, so the profile's rules decide it."""
    chip = _chip(lab, 304)
    refused(lab, _ir(lab, chip, "CN=sensor-304,L=Berlin"),
            "badCertTemplate", body="ip", label=DEVICES)


def test_s4_1_1_a_revoked_stage_is_cert_revoked_without_registration_too(
        lab: Lab, unregistered_stages: None) -> None:
    chip = _chip(lab, 305)
    lab.pki.revocation.revoke("chipco-components", chip.certificate.serial_number,
                              x509.ReasonFlags.key_compromise, "test")
    refused(lab, _ir(lab, chip, "CN=sensor-305"), "certRevoked", label=DEVICES)
