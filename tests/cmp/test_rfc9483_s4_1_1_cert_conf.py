"""certConf (RFC 9483 §4.1.1, RFC 9810 §5.3.18): the CertStatus names the certificate of
the transaction by certReqId and hash, its status is accepted (without failInfo) or
rejection, it is protected as the request was, and a certificate is confirmed once."""

from __future__ import annotations

import os

from iotpki.wire.cmp.requests import RequestHeader, encode_request
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import Lab, Reply, cert_req_messages, cert_status_body, new_key, now

SENDER = parse_subject("CN=sensor-7")


def _ir(lab: Lab) -> tuple[Reply, bytes, bytes, str]:
    """An explicitly confirmed MAC ir: (answer, secret, transactionID, reference)."""
    reference, secret = lab.registration()
    transaction = os.urandom(16)
    header = RequestHeader(SENDER, sender_kid=reference.encode(), transaction_id=transaction)
    reply = lab.post(encode_request(header, "ir", cert_req_messages(new_key()),
                                    lab.mac(secret), now()))
    assert (reply.body, reply.status) == ("ip", 0)
    return reply, secret, transaction, reference


def _conf(lab: Lab, body_for: object = None, **status: object) -> Reply:
    reply, secret, transaction, reference = _ir(lab)
    body = cert_status_body(reply.certificate(), **status)  # type: ignore[arg-type]
    return lab.post(lab.cert_conf(reply, secret, transaction, reply.certificate(), SENDER,
                                  reference.encode(), body=body))


def _error(reply: Reply, failure: str) -> None:
    assert (reply.body, reply.status, reply.failures) == ("error", 2, {failure}), reply


def test_s4_1_1_cert_conf_accepting_the_certificate_gets_pkiconf(lab: Lab) -> None:
    assert _conf(lab).body == "pkiconf"


def test_s4_1_1_cert_conf_with_a_wrong_cert_req_id_is_bad_cert_id(lab: Lab) -> None:
    _error(_conf(lab, cert_req_id=1), "badCertId")


def test_s4_1_1_cert_conf_with_a_wrong_hash_is_bad_cert_id(lab: Lab) -> None:
    _error(_conf(lab, digest=os.urandom(32)), "badCertId")


def test_s5_3_18_accepted_with_a_fail_info_is_bad_request(lab: Lab) -> None:
    _error(_conf(lab, status=0, fail_bit=9), "badRequest")


def test_s4_1_1_status_other_than_accepted_or_rejection_is_bad_request(lab: Lab) -> None:
    _error(_conf(lab, status=1), "badRequest")


def test_s4_1_1_a_rejection_with_fail_info_is_taken(lab: Lab) -> None:
    assert _conf(lab, status=2, fail_bit=9).body == "pkiconf"


def test_s4_1_1_a_second_cert_conf_is_cert_confirmed(lab: Lab) -> None:
    reply, secret, transaction, reference = _ir(lab)
    first = lab.cert_conf(reply, secret, transaction, reply.certificate(), SENDER,
                          reference.encode())
    assert lab.post(first).body == "pkiconf"
    again = lab.cert_conf(reply, secret, transaction, reply.certificate(), SENDER,
                          reference.encode())
    _error(lab.post(again), "certConfirmed")


def test_s4_1_1_cert_conf_protected_otherwise_than_the_request_is_wrong_integrity(
        lab: Lab) -> None:
    """The ir was MAC-protected; a signed certConf for it (by a good certificate of ours)."""
    reply, _, transaction, _ = _ir(lab)
    signer = lab.enroll()
    der = lab.cert_conf(reply, signer, transaction, reply.certificate(),
                        signer.certificate.subject, signer.header().sender_kid)
    _error(lab.post(der), "wrongIntegrity")
