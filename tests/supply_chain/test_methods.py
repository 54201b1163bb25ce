"""Renewal, one-time secrets and registration lifecycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.errors import ConflictError, RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.registration import RegistrationMethod, RegistrationStatus
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.names import parse_subject
from iotpki.wire.possession import sign_possession
from tests.factories import domain_uri, make_csr
from tests.supply_chain.story import DOMAIN, advance, enroll, make_chip

CA = "operatorco-operations"


def _secret_registration(pki: PKI, **changes: object) -> tuple[str, str]:
    spec = RegistrationSpec("operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
                            subject=parse_subject("CN=sensor-77"), domain=DOMAIN, **changes)  # type: ignore[arg-type]
    created = pki.registrations.create(spec, "operatorco:crm")
    assert created.secret
    return created.registration.id, created.secret


def _with_secret(pki: PKI, registration: str, secret: str) -> Issued | Rejected:
    csr, _ = make_csr("whatever")
    return pki.enrollment.enroll(EnrollmentRequest(csr, "device", registration_id=registration,
                                                   secret=secret), "one-time-secret")


def test_one_time_secret_issues_the_registered_identity_once(demo_pki: PKI) -> None:
    registration, secret = _secret_registration(demo_pki)
    stored = demo_pki.registrations.get(registration)
    assert stored.secret_hash and secret not in stored.secret_hash
    outcome = _with_secret(demo_pki, registration, secret)
    assert isinstance(outcome, Issued)
    assert outcome.record.subject == "CN=sensor-77"
    assert outcome.record.sans == (f"uri:urn:iotpki:domain:{DOMAIN}",)
    assert demo_pki.registrations.get(registration).status is RegistrationStatus.CONSUMED
    again = _with_secret(demo_pki, registration, secret)
    assert isinstance(again, Rejected) and again.reason is RefusalReason.REGISTRATION_CONSUMED


def test_wrong_secret_and_unknown_registration(demo_pki: PKI) -> None:
    registration, _ = _secret_registration(demo_pki)
    for reg, secret in ((registration, "wrong"), ("nope", "x")):
        outcome = _with_secret(demo_pki, reg, secret)
        assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.BAD_SECRET
    assert demo_pki.registrations.get(registration).status is RegistrationStatus.OPEN


def test_expired_and_cancelled_registrations(demo_pki: PKI) -> None:
    expired, secret = _secret_registration(demo_pki, lifetime=timedelta(seconds=-1))
    outcome = _with_secret(demo_pki, expired, secret)
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REGISTRATION_EXPIRED
    cancelled, secret = _secret_registration(demo_pki)
    demo_pki.registrations.cancel(cancelled, "operatorco:crm")
    with pytest.raises(ConflictError):
        demo_pki.registrations.cancel(cancelled, "operatorco:crm")
    outcome = _with_secret(demo_pki, cancelled, secret)
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.NOT_REGISTERED


def _operational(pki: PKI):  # type: ignore[no-untyped-def]
    registration, secret = _secret_registration(pki)
    csr, key = make_csr("sensor-77", [domain_uri(DOMAIN)])
    outcome = pki.enrollment.enroll(EnrollmentRequest(csr, "device", registration_id=registration,
                                                      secret=secret), "one-time-secret")
    assert isinstance(outcome, Issued)
    return outcome, key


def test_renewal_keeps_subject_and_sans_with_a_new_key(demo_pki: PKI) -> None:
    current, key = _operational(demo_pki)
    csr, _ = make_csr("sensor-77", [domain_uri(DOMAIN)])
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(
        csr, "device", client_chain=(current.certificate,),
        possession_signature=sign_possession(key, csr)), "current-certificate")
    assert isinstance(outcome, Issued)
    assert outcome.record.subject == current.record.subject
    assert outcome.record.sans == current.record.sans
    assert outcome.certificate.public_key() != current.certificate.public_key()


def test_renewal_for_another_subject_or_of_a_revoked_certificate_is_refused(demo_pki: PKI) -> None:
    current, key = _operational(demo_pki)
    csr, _ = make_csr("sensor-99", [domain_uri(DOMAIN)])
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(
        csr, "device", client_chain=(current.certificate,),
        possession_signature=sign_possession(key, csr)), "current-certificate")
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.IDENTITY_MISMATCH
    demo_pki.revocation.revoke(CA, current.record.serial, x509.ReasonFlags.key_compromise, "t")
    csr, _ = make_csr("sensor-77", [domain_uri(DOMAIN)])
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(
        csr, "device", client_chain=(current.certificate,),
        possession_signature=sign_possession(key, csr)), "current-certificate")
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REVOKED


def test_renewal_of_a_certificate_issued_elsewhere_is_refused(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 1)
    demo_pki.certificates.get_by_fingerprint(chip.record.fingerprint)
    outcome, _ = enroll(demo_pki, chip, "chip-0001", method="current-certificate",
                        sans=[x509.UniformResourceIdentifier("urn:chipco:chip:0001")])
    assert isinstance(outcome, Issued)  # ChipCo's own chip renewing at ChipCo is fine
    renewed = advance(chip, outcome, None)
    assert renewed.record.authority == "chipco-components"
    no_cert, _ = make_csr("x")
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(no_cert, "device"), "current-certificate")
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.NO_CLIENT_IDENTITY


def test_unknown_method(demo_pki: PKI) -> None:
    csr, _ = make_csr("x")
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(csr, "device"), "telepathy")
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.METHOD_NOT_ALLOWED
