"""RFC 9483 §4.1.3 (kur): signed with the certificate to update, oldCertId names it, a new
key, one open kur per certificate (and no rr while it is open); refusals of the request
are a kup (rp) with status rejection and the exact failInfo bit."""

from __future__ import annotations

import os

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.cmp.requests import subject_key_id
from tests.cmp.rfc9483 import (
    Identity,
    Lab,
    Reply,
    audit_head,
    crmf,
    huge_rsa_spki,
    new_key,
    old_cert_id,
    refusals_since,
    refused,
    rr_body,
)


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


def _open_kur(lab: Lab, identity: Identity) -> tuple[Reply, bytes, Identity]:
    """A kur answered with a new certificate that awaits its certConf, and its holder."""
    transaction, key = os.urandom(16), new_key()
    reply = lab.post(lab.signed(identity, "kur", crmf(key, controls=old_cert_id(
        identity.certificate)), transaction_id=transaction))
    assert (reply.body, reply.status) == ("kup", 0), reply
    return reply, transaction, Identity(key, reply.certificate(), identity.chain)


def _confirm(lab: Lab, identity: Identity, reply: Reply, transaction: bytes) -> None:
    conf = lab.cert_conf(reply, identity, transaction, reply.certificate(),
                         identity.certificate.subject, subject_key_id(identity.certificate))
    assert lab.post(conf).body == "pkiconf"


def test_s4_1_3_a_second_kur_while_the_first_awaits_cert_conf_is_duplicate_cert_req(
        lab: Lab) -> None:
    """One open kur per certificate (RFC 9483 §4.1.3; RFC 9810 §5.2.3 duplicateCertReq):
    the second is refused in a kup, nothing issued, audited. Once the first is confirmed,
    its new certificate updates in turn (the old one no longer renews: only the newest
    does)."""
    identity = lab.enroll()
    first, transaction, successor = _open_kur(lab, identity)
    seq = audit_head(lab)
    second = lab.signed(identity, "kur", crmf(new_key(), controls=old_cert_id(
        identity.certificate)))
    refused(lab, second, "duplicateCertReq", body="kup")
    [record] = [r for r in refusals_since(lab, seq) if r.action == "cmp.request"]
    assert record.details["failure"] == "duplicateCertReq"
    _confirm(lab, identity, first, transaction)
    again = lab.post(lab.signed(successor, "kur", crmf(new_key(), controls=old_cert_id(
        successor.certificate)), implicit_confirm=True))
    assert (again.body, again.status) == ("kup", 0)


def test_s4_1_3_an_implicitly_confirmed_kur_leaves_nothing_open(lab: Lab) -> None:
    """With implicitConfirm the kur's transaction is closed at once: an rr of the updated
    certificate is served right away."""
    identity = lab.enroll()
    reply = lab.post(lab.signed(identity, "kur", crmf(new_key(), controls=old_cert_id(
        identity.certificate)), implicit_confirm=True))
    assert (reply.body, reply.status) == ("kup", 0)
    served = lab.post(lab.signed(identity, "rr", rr_body(identity.certificate, (4,))))
    assert (served.body, served.status) == ("rp", 0)


def test_s4_1_3_rr_while_a_kur_awaits_cert_conf_is_refused(lab: Lab) -> None:
    """The certificate being updated is not revoked while its successor is unconfirmed:
    rp rejection badRequest, the certificate stays good, audited; after the certConf the
    rr is served."""
    identity = lab.enroll()
    reply, transaction, _ = _open_kur(lab, identity)
    refused(lab, lab.signed(identity, "rr", rr_body(identity.certificate, (5,))), "badRequest",
            body="rp")
    assert lab.pki.certificates.get_by_fingerprint(
        fingerprint(identity.certificate)).status is CertificateStatus.GOOD
    _confirm(lab, identity, reply, transaction)
    served = lab.post(lab.signed(identity, "rr", rr_body(identity.certificate, (5,))))
    assert (served.body, served.status) == ("rp", 0)
    assert lab.pki.certificates.get_by_fingerprint(
        fingerprint(identity.certificate)).status is CertificateStatus.REVOKED
