"""Renewal lineage in the core's current-certificate method (EST simplereenroll, CMP kur):
only the newest certificate of an identity (authority, subject, SANs) renews, and a
certificate revoked for keyCompromise ends renewal from every certificate with its key."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.wire.keys import generate_private_key
from iotpki.wire.possession import sign_possession
from tests.factories import domain_uri, make_csr
from tests.supply_chain.story import DOMAIN

CA = "operatorco-operations"


def _issue(pki: PKI, name: str = "sensor-77", key: Any = None) -> tuple[Issued, Any]:
    csr, key = make_csr(name, [domain_uri(DOMAIN)], key=key)
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(outcome, Issued)
    return outcome, key


def _renew(pki: PKI, current: Issued, key: Any, new_key: Any = None,
           name: str = "sensor-77") -> Issued | Rejected:
    csr, _ = make_csr(name, [domain_uri(DOMAIN)], key=new_key)
    outcome = pki.enrollment.enroll(EnrollmentRequest(
        csr, "device", client_chain=(current.certificate,),
        possession_signature=sign_possession(key, csr)), "current-certificate")
    assert not isinstance(outcome, Issued) or outcome.record.subject == current.record.subject
    return outcome  # type: ignore[return-value]


def test_only_the_newest_certificate_renews(demo_pki: PKI) -> None:
    first, first_key = _issue(demo_pki)
    second = _renew(demo_pki, first, first_key)
    assert isinstance(second, Issued)
    again = _renew(demo_pki, first, first_key)  # the replaced certificate forks no lineage
    assert isinstance(again, Rejected) and again.reason is RefusalReason.IDENTITY_MISMATCH
    assert "only the newest renews" in again.detail


def test_a_lost_answer_is_served_again(demo_pki: PKI) -> None:
    """The client renewed but lost the answer: it still holds the old certificate and asks
    again for the same new key. That is a retry, not a fork."""
    first, first_key = _issue(demo_pki)
    new_key = generate_private_key("ec-p256")
    assert isinstance(_renew(demo_pki, first, first_key, new_key), Issued)
    assert isinstance(_renew(demo_pki, first, first_key, new_key), Issued)
    other = _renew(demo_pki, first, first_key, generate_private_key("ec-p256"))
    assert isinstance(other, Rejected) and other.reason is RefusalReason.IDENTITY_MISMATCH


def test_newest_renews_after_a_rekey(demo_pki: PKI) -> None:
    first, first_key = _issue(demo_pki)
    csr_second, second_key = make_csr("sensor-77", [domain_uri(DOMAIN)])
    second = demo_pki.enrollment.enroll(EnrollmentRequest(
        csr_second, "device", client_chain=(first.certificate,),
        possession_signature=sign_possession(first_key, csr_second)), "current-certificate")
    assert isinstance(second, Issued)
    assert isinstance(_renew(demo_pki, second, second_key), Issued)


def test_other_identities_do_not_interfere(demo_pki: PKI) -> None:
    """Another device (other subject), or the same subject with other SANs, is another
    lineage: its newer certificates do not stop this one renewing."""
    mine, key = _issue(demo_pki, "sensor-77")
    _issue(demo_pki, "sensor-78")
    csr, _ = make_csr("sensor-77", [domain_uri("elsewhere." + DOMAIN)])
    other_sans = demo_pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(other_sans, Issued) or other_sans.reason is not None
    assert isinstance(_renew(demo_pki, mine, key), Issued)


def test_key_compromise_ends_renewal_for_every_certificate_with_the_key(demo_pki: PKI) -> None:
    """RFC 5280 §5.3.1 keyCompromise: the key is no longer trusted, whichever certificate
    carries it. Two certificates share a key; revoking the newer for keyCompromise stops
    the older one too (which is otherwise not the newest either: check the reason)."""
    older, key = _issue(demo_pki)
    newer, _ = _issue(demo_pki, key=key)
    demo_pki.revocation.revoke(CA, newer.record.serial, x509.ReasonFlags.key_compromise, "t")
    refused = _renew(demo_pki, older, key)
    assert isinstance(refused, Rejected) and refused.reason is RefusalReason.REVOKED
    assert "keyCompromise" in refused.detail


def test_superseded_revocation_does_not_end_the_key(demo_pki: PKI) -> None:
    """Only keyCompromise condemns the key: a sibling with the same key revoked as
    superseded leaves the newest certificate free to renew."""
    older, key = _issue(demo_pki)
    demo_pki.revocation.revoke(CA, older.record.serial, x509.ReasonFlags.superseded, "t")
    newer, _ = _issue(demo_pki, key=key)
    assert isinstance(_renew(demo_pki, newer, key), Issued)
