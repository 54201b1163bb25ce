"""RFC 9483 §4.1.3 (kur): signed with the certificate to update, oldCertId names it, a new
key; refusals of the request are a kup with status rejection and the exact failInfo bit."""

from __future__ import annotations

from tests.cmp.rfc9483 import Lab, crmf, huge_rsa_spki, new_key, old_cert_id, refused


def test_s4_1_3_kur_signed_by_the_current_certificate_is_granted(lab: Lab) -> None:
    identity = lab.enroll()
    der = lab.signed(identity, "kur", crmf(new_key(), controls=old_cert_id(
        identity.certificate)), implicit_confirm=True)
    reply = lab.post(der)
    assert (reply.body, reply.status, reply.failures) == ("kup", 0, frozenset())
    assert reply.certificate().subject == identity.certificate.subject


def test_s4_1_3_old_cert_id_naming_another_certificate_is_bad_cert_id(lab: Lab) -> None:
    identity = lab.enroll()
    control = old_cert_id(identity.certificate, serial=identity.certificate.serial_number + 1)
    der = lab.signed(identity, "kur", crmf(new_key(), controls=control))
    refused(lab, der, "badCertId", body="kup")


def test_s4_1_3_kur_keeping_the_old_key_is_bad_cert_template(lab: Lab) -> None:
    identity = lab.enroll()
    der = lab.signed(identity, "kur", crmf(identity.key, controls=old_cert_id(
        identity.certificate)))
    refused(lab, der, "badCertTemplate", body="kup")


def test_s4_1_3_mac_protected_kur_is_not_authorized(lab: Lab) -> None:
    refused(lab, lab.mac_request("kur", crmf(new_key())), "notAuthorized")


def test_s4_1_3_a_key_the_profile_refuses_is_bad_cert_template_before_pop(lab: Lab) -> None:
    """The renewed certificate's profile decides; the POP (by another key) is not tried."""
    identity = lab.enroll()
    der = lab.signed(identity, "kur", crmf(huge_rsa_spki(), pop_key=new_key(),
                                           controls=old_cert_id(identity.certificate)))
    refused(lab, der, "badCertTemplate", body="kup")
