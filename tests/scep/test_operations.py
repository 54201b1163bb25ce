"""RFC 8894 §3.3 PKIOperation, message by message, with a client built on our codec and
every CertRep checked by `openssl cms` (signature by the RA certificate, which chains to
the CA; the pkcsPKIEnvelope decrypted with the requester's key): PKCSReq with a one-time
secret (POST and GET), a wrong challenge, a replay, manual approval with CertPoll,
GetCert, GetCRL."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from iotpki.wire.scep.attributes import FailInfo, MessageType, PKIStatus
from iotpki.wire.scep.content import encode_issuer_and_serial, encode_issuer_and_subject
from tests.scep.conftest import CA, DOMAIN_SAN, Requester, Scene, csr_der, fetch, run


def write(path: Path, *items: x509.Certificate) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in items))
    return path.name


def openssl_open(scep: Scene, requester: Requester, reply: bytes) -> bytes:
    """The CertRep verified by openssl against the CA chain, its envelope decrypted by
    openssl with the requester's key: the degenerate SignedData inside (DER)."""
    chain = scep.pki.authorities.get(CA).full_chain
    (scep.dir / "reply.der").write_bytes(reply)
    write(scep.dir / "cas.pem", *chain)
    write(scep.dir / "requester.pem", requester.certificate)
    (scep.dir / "requester.key").write_bytes(requester.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    run("openssl", "cms", "-verify", "-inform", "DER", "-in", "reply.der", "-CAfile", "cas.pem",
        "-purpose", "any", "-binary", "-out", "envelope.der",
        cwd=scep.dir)
    run("openssl", "cms", "-decrypt", "-inform", "DER", "-in", "envelope.der", "-binary",
        "-recip", "requester.pem", "-inkey", "requester.key", "-out", "inner.der", cwd=scep.dir)
    return (scep.dir / "inner.der").read_bytes()


def enroll(scep: Scene, requester: Requester, challenge: str | None, label: str = "",
           subject: str = "CN=sensor-7") -> tuple[bytes, bytes]:
    """(CertRep, senderNonce) of a PKCSReq."""
    ra = scep.ra(label)
    message, nonce = requester.message(MessageType.PKCS_REQ,
                                       csr_der(requester.key, subject, challenge), ra)
    status, media, reply = scep.post(label, message)
    assert status == 200 and media == "application/x-pki-message", reply
    return reply, nonce


def test_pkcsreq_one_time_secret_s3_3_1_checked_by_openssl(scep: Scene) -> None:
    requester = Requester.new()
    reply, nonce = enroll(scep, requester, scep.secret_registration("CN=scep-py-1"))
    message, inner = requester.open(reply, scep.ra())
    # §3.3.2: SUCCESS, the transactionID echoed, recipientNonce = our senderNonce, a new
    # senderNonce of 16 octets.
    assert message.message_type == MessageType.CERT_REP
    assert message.pki_status is PKIStatus.SUCCESS and message.fail_info is None
    assert message.transaction_id == requester.transaction_id()
    assert message.recipient_nonce == nonce
    assert len(message.sender_nonce) == 16 and message.sender_nonce != nonce
    certificates = pkcs7.load_der_pkcs7_certificates(openssl_open(scep, requester, reply))
    assert inner is not None and certificates[0].subject.rfc4514_string() == "CN=scep-py-1"
    assert scep.issued_here() == 1


def test_pkcsreq_over_get_s4_3(scep: Scene) -> None:
    """§4.3: PKIOperation over GET carries the message base64 in the query."""
    requester = Requester.new()
    message, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", scep.secret_registration("CN=scep-get")), scep.ra())
    query = urllib.parse.urlencode({"operation": "PKIOperation",
                                    "message": base64.b64encode(message).decode()})
    status, _, reply = fetch(f"{scep.url()}?{query}")
    assert status == 200
    answer, _ = requester.open(reply, scep.ra())
    assert answer.pki_status is PKIStatus.SUCCESS


def test_wrong_challenge_is_failure_and_audited(scep: Scene) -> None:
    challenge = scep.secret_registration("CN=scep-wrong")
    requester = Requester.new()
    reply, _ = enroll(scep, requester, challenge.split(":")[0] + ":not-the-secret")
    message, inner = requester.open(reply, scep.ra())
    assert message.pki_status is PKIStatus.FAILURE and message.fail_info is FailInfo.BAD_REQUEST
    assert inner is None  # §3.3.2: no pkcsPKIEnvelope in a FAILURE
    assert scep.issued_here() == 0
    assert [r["reason"] for r in scep.refusals()] == ["bad-secret"]


def test_replayed_message_is_refused_s3_2_1_5(scep: Scene) -> None:
    """The same pkiMessage twice: the second is a replay (its senderNonce was seen),
    refused with nothing issued."""
    requester = Requester.new()
    ra = scep.ra()
    message, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", scep.secret_registration("CN=scep-replay")), ra)
    first = requester.open(scep.post("", message)[2], ra)[0]
    second = requester.open(scep.post("", message)[2], ra)[0]
    assert first.pki_status is PKIStatus.SUCCESS
    assert second.pki_status is PKIStatus.FAILURE and second.fail_info is FailInfo.BAD_REQUEST
    assert scep.issued_here() == 1
    assert [r["reason"] for r in scep.refusals()] == ["replayed"]


def test_manual_approval_pending_then_certpoll_s3_3_3(scep: Scene) -> None:
    """PKCSReq without a challenge on an endpoint with manual approval: PENDING; CertPoll
    is PENDING until an operator approves, then SUCCESS with the certificate."""
    requester = Requester.new()
    ra = scep.ra("approval")
    csr = csr_der(requester.key, "CN=scep-approved", None, [DOMAIN_SAN])
    message, _ = requester.message(MessageType.PKCS_REQ, csr, ra)
    answer, _ = requester.open(scep.post("approval", message)[2], ra)
    assert answer.pki_status is PKIStatus.PENDING, scep.refusals()

    issuer = scep.pki.authorities.get(CA).certificate.subject
    poll = encode_issuer_and_subject(issuer, x509.load_der_x509_csr(csr).subject)
    waiting, _ = requester.open(scep.post("approval", requester.message(
        MessageType.CERT_POLL, poll, ra)[0])[2], ra)
    assert waiting.pki_status is PKIStatus.PENDING

    pending = next(p for p in scep.pki.enrollment.approval.find() if p.csr == csr)
    scep.pki.enrollment.approval.approve(pending.id, "operator")
    reply = scep.post("approval", requester.message(MessageType.CERT_POLL, poll, ra)[0])[2]
    done, _ = requester.open(reply, ra)
    assert done.pki_status is PKIStatus.SUCCESS, done.fail_info
    issued = pkcs7.load_der_pkcs7_certificates(openssl_open(scep, requester, reply))[0]
    assert issued.subject.rfc4514_string() == "CN=scep-approved"


def test_certpoll_of_unknown_transaction_is_bad_cert_id(scep: Scene) -> None:
    requester = Requester.new()
    ra = scep.ra()
    poll = encode_issuer_and_subject(scep.pki.authorities.get(CA).certificate.subject,
                                     requester.certificate.subject)
    answer, _ = requester.open(scep.post("", requester.message(
        MessageType.CERT_POLL, poll, ra)[0])[2], ra)
    assert answer.pki_status is PKIStatus.FAILURE and answer.fail_info is FailInfo.BAD_CERT_ID
    assert [r["reason"] for r in scep.refusals()] == ["not-registered"]


def test_get_cert_s3_3_4(scep: Scene) -> None:
    requester = Requester.new()
    reply, _ = enroll(scep, requester, scep.secret_registration("CN=scep-getcert"))
    issued = pkcs7.load_der_pkcs7_certificates(requester.open(reply, scep.ra())[1] or b"")[0]
    other = Requester.new("someone-else")
    query = encode_issuer_and_serial(issued.issuer, issued.serial_number)
    answer = scep.post("", other.message(MessageType.GET_CERT, query, scep.ra())[0])[2]
    assert other.open(answer, scep.ra())[0].pki_status is PKIStatus.SUCCESS
    assert pkcs7.load_der_pkcs7_certificates(openssl_open(scep, other, answer)) == [issued]

    unknown = encode_issuer_and_serial(issued.issuer, issued.serial_number + 1)
    missing = other.open(scep.post("", other.message(
        MessageType.GET_CERT, unknown, scep.ra())[0])[2], scep.ra())[0]
    assert missing.fail_info is FailInfo.BAD_CERT_ID


def test_get_crl_s3_3_4(scep: Scene) -> None:
    requester = Requester.new()
    issuer = scep.pki.authorities.get(CA).certificate
    query = encode_issuer_and_serial(issuer.subject, 1)
    reply = scep.post("", requester.message(MessageType.GET_CRL, query, scep.ra())[0])[2]
    assert requester.open(reply, scep.ra())[0].pki_status is PKIStatus.SUCCESS
    (scep.dir / "crls.p7").write_bytes(openssl_open(scep, requester, reply))
    printed = run("openssl", "pkcs7", "-inform", "DER", "-in", "crls.p7", "-print_certs",
                  cwd=scep.dir).stdout
    assert "Certificate Revocation List" in printed or "-----BEGIN X509 CRL-----" in printed
    write(scep.dir / "issuer.pem", issuer)
    run("openssl", "pkcs7", "-inform", "DER", "-in", "crls.p7", "-print_certs",
        "-out", "crl.pem", cwd=scep.dir)
    crl = x509.load_pem_x509_crl((scep.dir / "crl.pem").read_bytes().split(
        b"-----BEGIN X509 CRL-----", 1)[1].join((b"-----BEGIN X509 CRL-----", b"")))
    assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())


@pytest.mark.parametrize("subject", ["CN=scep-pending-twice"])
def test_pkcsreq_sent_again_while_pending_is_not_queued_twice(scep: Scene, subject: str) -> None:
    """§3.3.3 / RFC 7030 §4.2.3 alike: the same request resent while it waits is PENDING
    again, one request in the queue."""
    requester = Requester.new()
    ra = scep.ra("approval")
    csr = csr_der(requester.key, subject, None)
    for _ in range(2):
        message, _ = requester.message(MessageType.PKCS_REQ, csr, ra)
        assert requester.open(scep.post("approval", message)[2], ra)[0].pki_status \
            is PKIStatus.PENDING
    assert sum(1 for p in scep.pki.enrollment.approval.find(limit=1000)
               if x509.load_der_x509_csr(p.csr).subject.rfc4514_string() == subject) == 1
