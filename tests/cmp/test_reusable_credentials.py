"""Reusable MAC credentials (issue 13) and spent secrets (issue 15 item 11), against the
CMP server in process (RFC 9483 §3.2: MAC protection, the senderKID names the secret).

A registration with an operator-chosen reference and N uses authorizes N issuances, each
audited, then its secret authenticates nothing; so does a consumed one-time secret (genm
included), an expired or a cancelled registration's. On SQLite and PostgreSQL: uses are
counted by the database."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from iotpki.app import PKI
from iotpki.core.errors import ConfigurationError, ConflictError
from iotpki.core.outcomes import Issued
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.registration import RegistrationMethod, RegistrationStatus
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.protocols.cmp.routes import answer_bytes
from iotpki.wire.cmp.client_requests import encode_cert_conf, encode_mac_request
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.protection import MACProtection, PBMParameters
from iotpki.wire.cmp.requests import encode_cert_req_msg, genm_body
from iotpki.wire.cmp.transactions import cert_hash
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import CA, DOMAIN, error_failures
from tests.factories import domain_uri, make_csr

SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
CA_CERTS = "1.3.6.1.5.5.7.4.17"


def _spec(**changes: object) -> RegistrationSpec:
    spec = RegistrationSpec("operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
                            domain=DOMAIN)
    return replace(spec, **changes)  # type: ignore[arg-type]


def _mac(secret: str) -> MACProtection:
    return MACProtection(secret.encode(), PBMParameters(os.urandom(16), SHA256, 1000, HMAC_SHA256))


def _ir(pki: PKI, kid: str, secret: str, subject: str, implicit: bool = True,
        transaction: bytes | None = None) -> bytes:
    request = encode_cert_req_msg(generate_private_key("ec-p256"), parse_subject(subject))
    der = encode_mac_request("ir", tlv(SEQUENCE, request), _mac(secret), kid.encode(),
                             datetime.now(UTC), transaction_id=transaction,
                             implicit_confirm=implicit, sender=parse_subject(subject))
    return answer_bytes(pki.cmp, "", der)


def _genm(pki: PKI, kid: str, secret: str) -> bytes:
    der = encode_mac_request("genm", genm_body([CA_CERTS]), _mac(secret), kid.encode(),
                             datetime.now(UTC), sender=parse_subject("CN=line-7"))
    return answer_bytes(pki.cmp, "", der)


def _kind(answer: bytes) -> str:
    return decode_pki_message(answer).body_type


def test_a_reference_with_n_uses_issues_n_times_then_authenticates_nothing(
        demo_pki: PKI) -> None:
    created = demo_pki.registrations.create(_spec(reference="line-7", uses=2), "operatorco:crm")
    secret = created.secret
    assert secret is not None and created.registration.reference == "line-7"
    assert _kind(_genm(demo_pki, "line-7", secret)) == "genp"  # open: genm is fine
    for n in (1, 2):
        assert _kind(_ir(demo_pki, "line-7", secret, f"CN=sensor-{n}")) == "ip"
    used = demo_pki.registrations.get(created.registration.id)
    assert used.status is RegistrationStatus.CONSUMED and used.uses == 2
    assert error_failures(_ir(demo_pki, "line-7", secret, "CN=sensor-3")) == (
        "error", {"notAuthorized"})
    assert error_failures(_genm(demo_pki, "line-7", secret)) == ("error", {"notAuthorized"})
    issued = [e.record for e in demo_pki.audit.entries(limit=None)
              if e.record.action == "certificate.issue"
              and e.record.details.get("registration") == created.registration.id]
    assert [r.outcome for r in issued] == ["success", "success"]  # every use audited
    refused = [e.record.details["failure"] for e in demo_pki.audit.entries(limit=None)
               if e.record.action == "cmp.request"]
    assert refused == ["notAuthorized", "notAuthorized"]


def test_a_consumed_one_time_secret_authenticates_no_genm(demo_pki: PKI) -> None:
    """Issue 15 item 11."""
    created = demo_pki.registrations.create(_spec(subject=parse_subject("CN=sensor-7")),
                                            "operatorco:crm")
    assert created.secret is not None
    kid = created.registration.id
    assert _kind(_ir(demo_pki, kid, created.secret, "CN=sensor-7")) == "ip"
    assert error_failures(_genm(demo_pki, kid, created.secret)) == ("error", {"notAuthorized"})


def test_the_certconf_after_the_last_use_is_still_authenticated(demo_pki: PKI) -> None:
    """RFC 9483 §4.1.1: the issuance used the secret up, but the transaction it opened is
    confirmed with the same secret."""
    created = demo_pki.registrations.create(_spec(subject=parse_subject("CN=sensor-8")),
                                            "operatorco:crm")
    assert created.secret is not None
    transaction = os.urandom(16)
    answer = decode_pki_message(_ir(demo_pki, created.registration.id, created.secret,
                                    "CN=sensor-8", implicit=False, transaction=transaction))
    assert answer.body_type == "ip"
    issued = answer.body.responses[0].certificate  # type: ignore[union-attr]
    conf = encode_mac_request("certConf", encode_cert_conf(cert_hash(issued, None)),
                              _mac(created.secret), created.registration.id.encode(),
                              datetime.now(UTC), transaction_id=transaction,
                              recip_nonce=answer.header.sender_nonce,
                              sender=parse_subject("CN=sensor-8"))
    assert _kind(answer_bytes(demo_pki.cmp, "", conf)) == "pkiconf"


@pytest.mark.parametrize("state", ["expired", "cancelled"])
def test_an_expired_or_cancelled_registration_authenticates_nothing(demo_pki: PKI,
                                                                    state: str) -> None:
    lifetime = timedelta(0) if state == "expired" else timedelta(days=1)
    created = demo_pki.registrations.create(_spec(reference="batch-9", uses=10,
                                                  lifetime=lifetime), "operatorco:crm")
    assert created.secret is not None
    if state == "cancelled":
        demo_pki.registrations.cancel(created.registration.id, "operatorco:crm")
    assert error_failures(_genm(demo_pki, "batch-9", created.secret)) == (
        "error", {"notAuthorized"})
    assert error_failures(_ir(demo_pki, "batch-9", created.secret, "CN=s")) == (
        "error", {"notAuthorized"})


def test_an_unknown_reference_is_a_bad_message_check(demo_pki: PKI) -> None:
    """RFC 9483 §3.6.4: problems with the MAC reference are badMessageCheck."""
    assert error_failures(_genm(demo_pki, "no-such-line", "x")) == ("error", {"badMessageCheck"})
    assert error_failures(_genm(demo_pki, "x" * 250_000, "x")) == ("error", {"badMessageCheck"})
    details = [e.record.details for e in demo_pki.audit.entries(limit=None)
               if e.record.action == "cmp.request"]
    assert all(len(str(d)) < 2000 for d in details)  # the 250 KB senderKID is not stored


def test_reference_rules(demo_pki: PKI) -> None:
    demo_pki.registrations.create(_spec(reference="line-8", uses=5), "operatorco:crm")
    with pytest.raises(ConflictError):  # one open registration per reference
        demo_pki.registrations.create(_spec(reference="line-8"), "operatorco:crm")
    with pytest.raises(ConfigurationError):  # shaped like a registration id
        demo_pki.registrations.create(_spec(reference="0190a4c2-0000-7000-8000-000000000000"),
                                      "operatorco:crm")
    with pytest.raises(ConfigurationError):  # a secret's feature
        demo_pki.registrations.create(replace(_spec(uses=3), method=RegistrationMethod.MANUAL),
                                      "operatorco:crm")
    with pytest.raises(ConfigurationError):
        demo_pki.registrations.create(_spec(reference="no:colon"), "operatorco:crm")


def test_a_locked_registration_authenticates_nothing(demo_pki: PKI) -> None:
    """Locked after too many wrong secrets (EST HTTP Basic guesses, core.ra.guessing): its
    secret authenticates no CMP request either until an operator unlocks it."""
    created = demo_pki.registrations.create(_spec(reference="line-lock", uses=3),
                                            "operatorco:crm")
    assert created.secret is not None
    with demo_pki.database.unit_of_work() as uow:
        assert uow.registrations.note_failed_secret(created.registration.id,
                                                    datetime.now(UTC), 1)
        uow.commit()
    assert error_failures(_genm(demo_pki, "line-lock", created.secret)) == (
        "error", {"notAuthorized"})
    assert error_failures(_ir(demo_pki, "line-lock", created.secret, "CN=s")) == (
        "error", {"notAuthorized"})


def test_the_reference_is_also_an_http_basic_user_name(demo_pki: PKI) -> None:
    """EST (RFC 7030 §3.2.3) hands the Basic user name to the one-time-secret method as the
    registration: the reference works there too, and counts a use."""
    created = demo_pki.registrations.create(_spec(reference="line-est", uses=2),
                                            "operatorco:crm")
    csr, _ = make_csr("sensor-est", [domain_uri(DOMAIN)])
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(
        csr=csr, requester="est:line-est", registration_id="line-est", secret=created.secret,
        authority=CA, profile="operational"), "one-time-secret")
    assert isinstance(outcome, Issued), outcome
    assert demo_pki.registrations.get(created.registration.id).uses == 1
