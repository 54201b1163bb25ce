"""RFC 9483 §4.2 / §5.3.2 rr not signed by the certificate it names: by an RA (a
certificate bound to an API principal whose role may revoke, for certificates of its
organization), and MAC-protected by a registration that allows revocation (for the
certificates it could have issued); removeFromCRL by an RA. Each refusal with body type,
PKIStatus and exact failInfo; nothing changed and the refusal audited."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.integration.principal import Role
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import MAY_REVOKE
from iotpki.wire.cmp.requests import RequestHeader, encode_request
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import (
    CA,
    Identity,
    Lab,
    audit_head,
    cert_req_messages,
    new_key,
    now,
    refusals_since,
    refused,
    rr_body,
)
from tests.supply_chain.story import make_chip


def _status(lab: Lab, certificate: x509.Certificate) -> CertificateStatus:
    return lab.pki.certificates.get_by_fingerprint(fingerprint(certificate)).status


def _ra(lab: Lab, name: str, role: Role = Role.OPERATOR,
        organization: str = "operatorco") -> Identity:
    """An RA: a certificate of this CA bound to an API principal by fingerprint."""
    identity = lab.enroll(f"CN={name}")
    lab.pki.principals.create_certificate_principal(
        organization, role, name, "test", fingerprint=fingerprint(identity.certificate))
    return identity


def test_s5_3_2_rr_signed_by_an_ra_principal_revokes_a_certificate_of_its_organization(
        lab: Lab) -> None:
    ra, device = _ra(lab, "ra-1"), lab.enroll("CN=sensor-41")
    seq = audit_head(lab)
    reply = lab.post(lab.signed(ra, "rr", rr_body(device.certificate, (1,))))
    assert (reply.body, reply.status, reply.failures) == ("rp", 0, frozenset())
    record = lab.pki.certificates.get_by_fingerprint(fingerprint(device.certificate))
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == x509.ReasonFlags.key_compromise.value
    revoked = [e.record for e in lab.pki.audit.entries(after=seq, limit=None)
               if e.record.action == "certificate.revoke"]
    assert [r.actor for r in revoked] == [f"cmp:{fingerprint(ra.certificate)[:16]}"]
    assert _status(lab, ra.certificate) is CertificateStatus.GOOD


def test_s5_3_2_an_ra_whose_role_may_not_revoke_is_not_authorized(lab: Lab) -> None:
    ra, device = _ra(lab, "auditor-1", Role.AUDITOR), lab.enroll("CN=sensor-42")
    refused(lab, lab.signed(ra, "rr", rr_body(device.certificate)), "notAuthorized")
    assert _status(lab, device.certificate) is CertificateStatus.GOOD


def test_s4_2_a_signer_bound_to_no_principal_naming_another_certificate_is_not_authorized(
        lab: Lab) -> None:
    stranger, device = lab.enroll("CN=sensor-43"), lab.enroll("CN=sensor-44")
    refused(lab, lab.signed(stranger, "rr", rr_body(device.certificate)), "notAuthorized")
    assert _status(lab, device.certificate) is CertificateStatus.GOOD


def test_s5_3_2_a_revoked_principal_is_not_authorized(lab: Lab) -> None:
    ra, device = _ra(lab, "ra-gone"), lab.enroll("CN=sensor-45")
    [principal] = [p for p in lab.pki.principals.list("operatorco") if p.name == "ra-gone"]
    lab.pki.principals.revoke(principal.id, "test")
    refused(lab, lab.signed(ra, "rr", rr_body(device.certificate)), "notAuthorized")
    assert _status(lab, device.certificate) is CertificateStatus.GOOD


def test_s5_3_2_a_certificate_of_another_organization_is_bad_cert_id(lab: Lab) -> None:
    """As the REST API, the RA does not learn that another organization's certificate
    exists: "no such certificate"."""
    ra, chip = _ra(lab, "ra-2"), make_chip(lab.pki, 401)
    refused(lab, lab.signed(ra, "rr", rr_body(chip.chain[0])), "badCertId")
    assert _status(lab, chip.chain[0]) is CertificateStatus.GOOD


def test_s5_3_2_an_unknown_serial_is_bad_cert_id(lab: Lab) -> None:
    ra, device = _ra(lab, "ra-3"), lab.enroll("CN=sensor-46")
    der = lab.signed(ra, "rr", rr_body(device.certificate,
                                       serial=device.certificate.serial_number ^ 0xFFFF))
    refused(lab, der, "badCertId")


def test_s4_2_an_ra_template_whose_subject_is_not_the_certificates_is_bad_cert_id(
        lab: Lab) -> None:
    ra, device = _ra(lab, "ra-4"), lab.enroll("CN=sensor-47")
    der = lab.signed(ra, "rr", rr_body(device.certificate, subject=parse_subject("CN=other")))
    refused(lab, der, "badCertId")
    assert _status(lab, device.certificate) is CertificateStatus.GOOD


def test_s4_2_an_ra_releases_a_held_certificate_with_remove_from_crl(lab: Lab) -> None:
    """The hold is the operator's to end; an RA principal is its organization's operator."""
    ra, device = _ra(lab, "ra-5"), lab.enroll("CN=sensor-48")
    lab.pki.revocation.revoke(CA, device.certificate.serial_number,
                              x509.ReasonFlags.certificate_hold, "test")
    reply = lab.post(lab.signed(ra, "rr", rr_body(device.certificate, (8,))))
    assert (reply.body, reply.status) == ("rp", 0)
    assert _status(lab, device.certificate) is CertificateStatus.GOOD


def test_s4_2_an_ra_revokes_a_held_certificate_for_good(lab: Lab) -> None:
    ra, device = _ra(lab, "ra-6"), lab.enroll("CN=sensor-49")
    lab.pki.revocation.revoke(CA, device.certificate.serial_number,
                              x509.ReasonFlags.certificate_hold, "test")
    reply = lab.post(lab.signed(ra, "rr", rr_body(device.certificate, (1,))))
    assert (reply.body, reply.status) == ("rp", 0)
    assert _status(lab, device.certificate) is CertificateStatus.REVOKED


def test_s4_2_an_ra_rr_for_a_revoked_certificate_is_rp_cert_revoked(lab: Lab) -> None:
    ra, device = _ra(lab, "ra-7"), lab.enroll("CN=sensor-50")
    lab.pki.revocation.revoke(CA, device.certificate.serial_number,
                              x509.ReasonFlags.superseded, "test")
    refused(lab, lab.signed(ra, "rr", rr_body(device.certificate, (1,))), "certRevoked",
            body="rp")


# -- MAC-protected rr ------------------------------------------------------------------------

def _credential(lab: Lab, name: str, may_revoke: bool = True) -> tuple[str, bytes]:
    """A reusable MAC credential for subject CN=<name>."""
    attributes = {MAY_REVOKE: True} if may_revoke else {}
    _, secret = lab.registration(f"CN={name}", reference=name, uses=10, attributes=attributes)
    return name, secret


def _mac(lab: Lab, credential: tuple[str, bytes], kind: str, body: bytes,
         implicit_confirm: bool = False) -> bytes:
    reference, secret = credential
    return encode_request(RequestHeader(parse_subject(f"CN={reference}"),
                                        sender_kid=reference.encode(),
                                        implicit_confirm=implicit_confirm),
                          kind, body, lab.mac(secret), now())


def _enrolled(lab: Lab, credential: tuple[str, bytes]) -> x509.Certificate:
    reply = lab.post(_mac(lab, credential, "ir", cert_req_messages(
        new_key(), f"CN={credential[0]}"), implicit_confirm=True))
    assert (reply.body, reply.status) == ("ip", 0), reply
    return reply.certificate()


def test_s4_2_mac_protected_rr_where_the_registration_allows_it(lab: Lab) -> None:
    credential = _credential(lab, "line-31")
    certificate = _enrolled(lab, credential)
    reply = lab.post(_mac(lab, credential, "rr", rr_body(certificate, (5,))))
    assert (reply.body, reply.status, reply.failures) == ("rp", 0, frozenset())
    assert _status(lab, certificate) is CertificateStatus.REVOKED


def test_s4_2_mac_protected_rr_without_the_registrations_leave_is_not_authorized(
        lab: Lab) -> None:
    credential = _credential(lab, "line-32", may_revoke=False)
    certificate = _enrolled(lab, credential)
    refused(lab, _mac(lab, credential, "rr", rr_body(certificate)), "notAuthorized")
    assert _status(lab, certificate) is CertificateStatus.GOOD


def test_s4_2_mac_protected_rr_for_a_certificate_it_could_not_have_issued_is_not_authorized(
        lab: Lab) -> None:
    credential, other = _credential(lab, "line-33"), lab.enroll("CN=sensor-51")
    refused(lab, _mac(lab, credential, "rr", rr_body(other.certificate)), "notAuthorized")
    assert _status(lab, other.certificate) is CertificateStatus.GOOD


def test_s4_2_mac_protected_remove_from_crl_is_the_holders(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registration ends a hold only where the profile lets the holder."""
    credential = _credential(lab, "line-34")
    certificate = _enrolled(lab, credential)
    lab.pki.revocation.revoke(CA, certificate.serial_number,
                              x509.ReasonFlags.certificate_hold, "test")
    refused(lab, _mac(lab, credential, "rr", rr_body(certificate, (8,))), "notAuthorized",
            body="rp")
    assert _status(lab, certificate) is CertificateStatus.HELD
    profile = lab.pki.profiles["operational"]
    monkeypatch.setitem(lab.pki.profiles, "operational",
                        dataclasses.replace(profile, holder_revokes_hold=True))
    reply = lab.post(_mac(lab, credential, "rr", rr_body(certificate, (8,))))
    assert (reply.body, reply.status) == ("rp", 0)
    assert _status(lab, certificate) is CertificateStatus.GOOD


def test_s4_2_refused_rr_are_audited_with_their_failure(lab: Lab) -> None:
    ra, device = _ra(lab, "auditor-2", Role.AUDITOR), lab.enroll("CN=sensor-52")
    seq = audit_head(lab)
    refused(lab, lab.signed(ra, "rr", rr_body(device.certificate)), "notAuthorized")
    [record] = [r for r in refusals_since(lab, seq) if r.action == "cmp.request"]
    assert (record.details["failure"], record.details["body"]) == ("notAuthorized", "rr")
