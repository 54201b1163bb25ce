"""RFC 9483 §4.2 (rr by an end entity): the template names the signing certificate,
crlEntryDetails hold exactly one CRLReason, removeFromCRL releases a held certificate;
each refusal with its body type, PKIStatus and exact PKIFailureInfo bit."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import CA, Lab, new_key, refused, rr_body


def _status(lab: Lab, certificate: x509.Certificate) -> CertificateStatus:
    return lab.pki.certificates.get_by_fingerprint(fingerprint(certificate)).status


def test_s4_2_rr_revokes_the_signing_certificate_with_its_reason(lab: Lab) -> None:
    identity = lab.enroll()
    reply = lab.post(lab.signed(identity, "rr", rr_body(identity.certificate, (1,))))
    assert (reply.body, reply.status, reply.failures) == ("rp", 0, frozenset())
    record = lab.pki.certificates.get_by_fingerprint(fingerprint(identity.certificate))
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == x509.ReasonFlags.key_compromise.value


def test_s4_2_rr_without_a_reason_code_is_bad_data_format(lab: Lab) -> None:
    identity = lab.enroll()
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, ())), "badDataFormat")
    assert _status(lab, identity.certificate) is CertificateStatus.GOOD


def test_s4_2_rr_with_two_reason_codes_is_bad_data_format(lab: Lab) -> None:
    identity = lab.enroll()
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, (1, 4))),
            "badDataFormat")
    assert _status(lab, identity.certificate) is CertificateStatus.GOOD


def test_s4_2_rr_naming_another_certificate_is_not_authorized(lab: Lab) -> None:
    identity, other = lab.enroll(), lab.enroll()
    der = lab.signed(identity, "rr", rr_body(other.certificate))
    refused(lab, der, "notAuthorized")
    assert _status(lab, other.certificate) is CertificateStatus.GOOD


def test_s4_2_rr_template_subject_other_than_the_certificate_is_bad_cert_id(lab: Lab) -> None:
    identity = lab.enroll()
    der = lab.signed(identity, "rr", rr_body(identity.certificate,
                                             subject=parse_subject("CN=sensor-8")))
    refused(lab, der, "badCertId")
    assert _status(lab, identity.certificate) is CertificateStatus.GOOD


def test_s4_2_rr_template_public_key_other_than_the_certificate_is_bad_cert_id(lab: Lab) -> None:
    identity = lab.enroll()
    spki = new_key().public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, spki=spki)),
            "badCertId")
    assert _status(lab, identity.certificate) is CertificateStatus.GOOD


def test_s4_2_rr_template_with_the_matching_subject_and_key_is_served(lab: Lab) -> None:
    identity = lab.enroll()
    spki = identity.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    reply = lab.post(lab.signed(identity, "rr", rr_body(
        identity.certificate, subject=identity.certificate.subject, spki=spki)))
    assert (reply.body, reply.status) == ("rp", 0)


def test_s4_2_rr_by_a_revoked_certificate_is_cert_revoked(lab: Lab) -> None:
    identity = lab.enroll()
    lab.pki.revocation.revoke(CA, identity.certificate.serial_number,
                              x509.ReasonFlags.superseded, "test")
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate)), "certRevoked")


def test_s4_2_remove_from_crl_releases_a_held_certificate(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the profile lets the holder end a hold (`holder_revokes_hold`)."""
    profile = lab.pki.profiles["operational"]
    monkeypatch.setitem(lab.pki.profiles, "operational",
                        dataclasses.replace(profile, holder_revokes_hold=True))
    identity = lab.enroll()
    lab.pki.revocation.revoke(CA, identity.certificate.serial_number,
                              x509.ReasonFlags.certificate_hold, "test")
    assert _status(lab, identity.certificate) is CertificateStatus.HELD
    reply = lab.post(lab.signed(identity, "rr", rr_body(identity.certificate, (8,))))
    assert (reply.body, reply.status) == ("rp", 0)
    assert _status(lab, identity.certificate) is CertificateStatus.GOOD


def test_s4_2_remove_from_crl_is_the_operators_unless_the_profile_says(lab: Lab) -> None:
    identity = lab.enroll()
    lab.pki.revocation.revoke(CA, identity.certificate.serial_number,
                              x509.ReasonFlags.certificate_hold, "test")
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, (8,))),
            "notAuthorized", body="rp")
    assert _status(lab, identity.certificate) is CertificateStatus.HELD


def test_s4_2_remove_from_crl_for_a_good_certificate_is_rejected(lab: Lab) -> None:
    identity = lab.enroll()
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, (8,))), "badRequest",
            body="rp")


def test_s4_2_remove_from_crl_does_not_revive_a_revoked_certificate(lab: Lab) -> None:
    identity = lab.enroll()
    lab.pki.revocation.revoke(CA, identity.certificate.serial_number,
                              x509.ReasonFlags.key_compromise, "test")
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, (8,))), "certRevoked")
    assert _status(lab, identity.certificate) is CertificateStatus.REVOKED


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reasons=st.lists(st.integers(min_value=0, max_value=10), min_size=2, max_size=4)
       | st.just([]))
def test_s4_2_any_reason_count_but_one_is_bad_data_format(lab: Lab, reasons: list[int]) -> None:
    identity = lab.enroll()
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, tuple(reasons))),
            "badDataFormat")
