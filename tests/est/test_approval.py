"""RFC 7030 §3.2.3 (credentials before manual approval) and §4.2.3 (a repeated request is
recognized) over the in-process EST adapter, on endpoints of the operational profile.

- "both" takes one-time secrets and manual approval: a request without credentials gets a
  401 challenge first; the same request (same subject and public key) sent again without
  credentials shows the client chose not to authenticate, and is queued (202).
- "manual" has no other method: queued at once.
- A repeat is matched on subject + SubjectPublicKeyInfo, never on the CSR bytes: a client
  re-signing its CertificationRequestInfo (ECDSA: new signature each time) or adding a
  challengePassword finds its request: 202 while pending, the certificate once approved,
  the refusal once rejected; never a second pending request."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from iotpki.core.outcomes import Issued
from iotpki.core.ra.pending import PendingRequest, PendingStatus
from iotpki.wire.keys import generate_private_key
from tests.conftest import shared_demo_pki
from tests.est.inprocess import DOMAIN, InProcessEST
from tests.factories import domain_uri, make_csr

BOTH = ("one-time-secret", "manual-approval")


@pytest.fixture(scope="module")
def approval_est(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest) -> Iterator[InProcessEST]:
    """One PKI for the module (each test asks for subjects of its own; 7 submissions and 3
    challenges from the in-process client stay under the per-client rates)."""
    directory = tmp_path_factory.mktemp("est-approval")
    with shared_demo_pki(request, directory, module_database_url, "http://127.0.0.1:1") as pki:
        client = InProcessEST(pki, {"both": BOTH, "manual": ("manual-approval",)})
        try:
            yield client
        finally:
            client.close()


@pytest.fixture
def est(approval_est: InProcessEST) -> InProcessEST:
    return approval_est


def _csr(name: str, key: Any, password: str | None = None) -> bytes:
    """A CSR for `name` signed (again) with `key`; optionally with a challengePassword."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).add_extension(
        x509.SubjectAlternativeName([domain_uri(DOMAIN)]), False)
    if password is not None:
        builder = builder.add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD,
                                        password.encode())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _pending(est: InProcessEST, name: str) -> list[PendingRequest]:
    """Every queued request (any status) asking for CN=`name`."""
    return [p for p in est.pki.enrollment.approval.find(status=None, limit=1000)
            if _subject(p.csr) == name]


def _subject(csr: bytes) -> str:
    names = x509.load_der_x509_csr(csr).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _challenge_refusals(est: InProcessEST) -> int:
    return sum(1 for e in est.pki.audit.entries(limit=None)
               if e.record.action == "est.request"
               and e.record.details.get("reason") == "no-client-identity"
               and "RFC 7030 §3.2.3" in str(e.record.details.get("detail")))


def test_s3_2_3_challenge_first_then_queue_the_request_sent_again(est: InProcessEST) -> None:
    key = generate_private_key("ec-p256")
    refusals = _challenge_refusals(est)
    first = est.post("simpleenroll", _csr("chip-both-1", key), label="both")
    assert first.status_code == 401 and first.content == b""
    assert first.headers["WWW-Authenticate"].startswith("Basic")
    assert _pending(est, "chip-both-1") == []  # nothing queued by the challenge
    assert _challenge_refusals(est) == refusals + 1  # audited

    again = est.post("simpleenroll", _csr("chip-both-1", key), label="both")  # re-signed
    assert again.status_code == 202 and int(again.headers["Retry-After"]) > 0
    bound = est.post("simpleenroll", _csr("chip-both-1", key, "c2VjcmV0"), label="both")
    assert bound.status_code == 202
    queued = _pending(est, "chip-both-1")
    assert len(queued) == 1 and queued[0].status is PendingStatus.PENDING

    est.pki.enrollment.approval.approve(queued[0].id, "operatorco:operator")
    issued = est.post("simpleenroll", _csr("chip-both-1", key), label="both")
    assert issued.status_code == 200
    certificate = pkcs7.load_der_pkcs7_certificates(base64.b64decode(issued.content))[0]
    assert certificate.public_key() == key.public_key()
    assert len(_pending(est, "chip-both-1")) == 1


def test_s3_2_3_credentials_after_the_challenge_are_used(est: InProcessEST) -> None:
    registration, secret = est.secret_registration("CN=sensor-9")
    csr, _ = make_csr("sensor-9", [domain_uri(DOMAIN)])
    assert est.post("simpleenroll", csr, label="both").status_code == 401
    answer = est.post("simpleenroll", csr, label="both", auth=(registration, secret))
    assert answer.status_code == 200
    assert _pending(est, "sensor-9") == []


def test_s3_2_3_a_wrong_secret_is_not_queued(est: InProcessEST) -> None:
    registration, _ = est.secret_registration("CN=sensor-9")
    csr, _ = make_csr("chip-wrong", [domain_uri(DOMAIN)])
    assert est.post("simpleenroll", csr, label="both").status_code == 401
    answer = est.post("simpleenroll", csr, label="both", auth=(registration, "wrong"))
    assert answer.status_code == 401 and answer.content == b""
    assert _pending(est, "chip-wrong") == []


def test_s3_2_3_an_endpoint_without_other_method_queues_at_once(est: InProcessEST) -> None:
    key = generate_private_key("ec-p256")
    answer = est.post("simpleenroll", _csr("chip-manual-1", key), label="manual")
    assert answer.status_code == 202 and int(answer.headers["Retry-After"]) > 0
    assert est.post("simpleenroll", _csr("chip-manual-1", key), label="manual").status_code == 202
    assert len(_pending(est, "chip-manual-1")) == 1


def test_s4_2_3_a_rejected_request_gets_its_refusal_when_sent_again(est: InProcessEST) -> None:
    key = generate_private_key("ec-p256")
    assert est.post("simpleenroll", _csr("chip-manual-2", key), label="manual").status_code == 202
    queued = _pending(est, "chip-manual-2")
    est.pki.enrollment.approval.reject(queued[0].id, "operatorco:operator", "unknown chip")
    answer = est.post("simpleenroll", _csr("chip-manual-2", key), label="manual")
    assert answer.status_code == 403 and b"unknown chip" in answer.content
    assert len(_pending(est, "chip-manual-2")) == 1  # not queued again


def test_s4_2_3_another_key_or_subject_is_another_request(est: InProcessEST) -> None:
    key = generate_private_key("ec-p256")
    assert est.post("simpleenroll", _csr("chip-manual-3", key), label="manual").status_code == 202
    other_key = _csr("chip-manual-3", generate_private_key("ec-p256"))
    assert est.post("simpleenroll", other_key, label="manual").status_code == 202
    other_subject = _csr("chip-manual-4", key)
    assert est.post("simpleenroll", other_subject, label="manual").status_code == 202
    assert len(_pending(est, "chip-manual-3")) == 2 and len(_pending(est, "chip-manual-4")) == 1
    # On "both", a request queued through "manual" is another endpoint's... same CA and
    # profile: the queue is per authority and profile, so it is found there too.
    assert est.post("simpleenroll", _csr("chip-manual-4", key), label="both").status_code == 202


def test_s4_4_a_server_made_key_never_waits_for_an_operator(est: InProcessEST) -> None:
    csr, _ = make_csr("chip-keygen", [domain_uri(DOMAIN)])
    for _ in range(2):  # challenged every time: nothing of it is ever queued
        answer = est.post("serverkeygen", csr, label="both")
        assert answer.status_code == 401 and answer.content == b""
    answer = est.post("serverkeygen", csr, label="manual")
    assert answer.status_code == 403 and b"method-not-allowed" in answer.content
    assert _pending(est, "chip-keygen") == []


def test_s4_2_3_two_copies_arriving_at_once_make_one_request(est: InProcessEST) -> None:
    """Two copies that both found nothing queued (they raced past the repeat check) reach
    the queue: the database keeps one undecided request per subject and key, the second
    copy gets the first one's id."""
    key = generate_private_key("ec-p256")
    approval = est.pki.enrollment.approval
    first = approval.submit(_csr("chip-race", key), "operatorco-operations", "operational",
                            "est:a", None, "192.0.2.61")
    second = approval.submit(_csr("chip-race", key), "operatorco-operations", "operational",
                             "est:b", None, "192.0.2.62")
    assert second.request_id == first.request_id
    assert [p.id for p in _pending(est, "chip-race")] == [first.request_id]
    approval.reject(first.request_id, "operatorco:operator", "no")  # decided: a new one may come
    third = approval.submit(_csr("chip-race", key), "operatorco-operations", "operational",
                            "est:c", None, "192.0.2.63")
    assert third.request_id != first.request_id and len(_pending(est, "chip-race")) == 2


def test_rfc2986_a_request_not_signed_by_its_key_is_neither_queued_nor_answered(
        est: InProcessEST) -> None:
    """Proof of possession before the queue: a CSR whose signature does not verify is a 400
    bad-signature, whether it would be queued or matches a queued request's subject and key
    (which would otherwise tell anyone its state)."""
    key = generate_private_key("ec-p256")
    good = _csr("chip-pop", key)
    assert est.post("simpleenroll", good, label="manual").status_code == 202
    broken = bytearray(_csr("chip-pop", key))
    broken[-1] ^= 0x01  # the last byte of the signature
    for label in ("manual", "both"):
        answer = est.post("simpleenroll", bytes(broken), label=label)
        assert answer.status_code == 400 and b"bad-signature" in answer.content
    stranger = bytearray(_csr("chip-pop-2", generate_private_key("ec-p256")))
    stranger[-1] ^= 0x01
    assert est.post("simpleenroll", bytes(stranger), label="manual").status_code == 400
    assert len(_pending(est, "chip-pop")) == 1 and _pending(est, "chip-pop-2") == []


def test_s4_2_3_a_revoked_answer_is_not_given_again(est: InProcessEST) -> None:
    """After approval the same request gets the certificate while it is good; once it is
    revoked, the same subject and key make a new request for an operator."""
    key = generate_private_key("ec-p256")
    assert est.post("simpleenroll", _csr("chip-manual-5", key), label="manual").status_code == 202
    approval = est.pki.enrollment.approval
    issued = approval.approve(_pending(est, "chip-manual-5")[0].id, "operatorco:operator")
    assert isinstance(issued, Issued)
    assert est.post("simpleenroll", _csr("chip-manual-5", key), label="manual").status_code == 200
    est.pki.revocation.revoke("operatorco-operations", issued.certificate.serial_number,
                              x509.ReasonFlags.superseded, "test")
    again = est.post("simpleenroll", _csr("chip-manual-5", key), label="manual")
    assert again.status_code == 202
    assert [p.status for p in _pending(est, "chip-manual-5")] == [PendingStatus.APPROVED,
                                                                  PendingStatus.PENDING]
