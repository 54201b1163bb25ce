"""RFC 9483 §3.1 (header), §3.2 (protection) and §3.5 (generic validation): each MUST as
a request that breaks it, answered with an error message, PKIStatus rejection and the
exact PKIFailureInfo bit; nothing is issued. Requests from our encoder; hypothesis for
malformed header variants."""

from __future__ import annotations

import os
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotpki.wire.cmp.requests import KeySignature, RequestHeader, encode_request, genm_body
from iotpki.wire.der import OCTET_STRING, tlv
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import (
    Lab,
    cert_req_messages,
    new_key,
    now,
    refused,
)

IMPLICIT_OID = bytes.fromhex("06082b0601050507040d")
CONFIRM_WAIT_OID = bytes.fromhex("06082b0601050507040e")


def _itav(oid: bytes, value: bytes = b"") -> bytes:
    return tlv(0x30, oid + value)


def _ir(lab: Lab, **header: object) -> bytes:
    return lab.mac_request("ir", cert_req_messages(new_key()), **header)


def test_s3_1_a_well_formed_mac_ir_is_served(lab: Lab) -> None:
    reply = lab.post(_ir(lab, implicit_confirm=True))
    assert (reply.body, reply.status) == ("ip", 0)


def test_s3_1_pvno_other_than_2_or_3_is_unsupported_version(lab: Lab) -> None:
    refused(lab, _ir(lab, pvno=1), "unsupportedVersion")


def test_s3_1_missing_transaction_id_is_bad_data_format(lab: Lab) -> None:
    refused(lab, _ir(lab, transaction_id=b""), "badDataFormat")


def test_s3_1_missing_sender_nonce_is_bad_sender_nonce(lab: Lab) -> None:
    refused(lab, _ir(lab, sender_nonce=b""), "badSenderNonce")


def test_s3_1_short_sender_nonce_is_bad_sender_nonce(lab: Lab) -> None:
    refused(lab, _ir(lab, sender_nonce=os.urandom(8)), "badSenderNonce")


def test_s3_1_recip_nonce_in_the_first_message_is_bad_recipient_nonce(lab: Lab) -> None:
    refused(lab, _ir(lab, recip_nonce=os.urandom(16)), "badRecipientNonce")


def test_s3_1_implicit_confirm_with_a_non_null_value_is_bad_data_format(lab: Lab) -> None:
    value = _itav(IMPLICIT_OID, tlv(0x02, b"\x01"))
    refused(lab, _ir(lab, general_info=(value,)), "badDataFormat")


def test_s3_1_implicit_confirm_in_a_genm_is_bad_request(lab: Lab) -> None:
    der = lab.mac_request("genm", genm_body(["1.3.6.1.5.5.7.4.17"]), implicit_confirm=True)
    refused(lab, der, "badRequest")


def test_s3_1_confirm_wait_time_of_a_wrong_type_is_bad_data_format(lab: Lab) -> None:
    value = _itav(CONFIRM_WAIT_OID, tlv(0x02, b"\x3c"))
    refused(lab, _ir(lab, general_info=(value,)), "badDataFormat")


def test_s3_1_confirm_wait_time_with_implicit_confirm_is_bad_request(lab: Lab) -> None:
    value = _itav(CONFIRM_WAIT_OID, tlv(0x18, b"20991231000000Z"))
    refused(lab, _ir(lab, implicit_confirm=True, general_info=(value,)), "badRequest")


def test_s3_1_message_time_far_from_ours_is_bad_time(lab: Lab) -> None:
    reference, secret = lab.registration()
    header = RequestHeader(parse_subject("CN=sensor-7"), sender_kid=reference.encode())
    der = encode_request(header, "ir", cert_req_messages(new_key()), lab.mac(secret),
                         now() - timedelta(hours=2))
    refused(lab, der, "badTime")


def test_s3_1_mac_protection_with_a_sender_that_is_no_directory_name(lab: Lab) -> None:
    uri = tlv(0x86, b"urn:sensor-7")  # GeneralName uniformResourceIdentifier [6]
    refused(lab, _ir(lab, sender_der=uri), "badMessageCheck")


def test_s3_2_mac_protection_without_sender_kid_is_bad_message_check(lab: Lab) -> None:
    refused(lab, _ir(lab, sender_kid=None), "badMessageCheck")


def test_s3_2_mac_protection_with_an_unknown_sender_kid_is_bad_message_check(lab: Lab) -> None:
    refused(lab, _ir(lab, sender_kid=b"no-such-reference"), "badMessageCheck")


def test_s3_5_replayed_sender_nonce_is_bad_sender_nonce(lab: Lab) -> None:
    """A genm (it leaves the registration open, so the replay passes the MAC check)."""
    der = lab.mac_request("genm", genm_body(["1.3.6.1.5.5.7.4.17"]))
    assert lab.post(der).body == "genp"
    refused(lab, der, "badSenderNonce")


def test_s3_5_transaction_id_reused_after_implicit_confirmation(lab: Lab) -> None:
    transaction = os.urandom(16)
    assert lab.post(_ir(lab, transaction_id=transaction, implicit_confirm=True)).body == "ip"
    refused(lab, _ir(lab, transaction_id=transaction, implicit_confirm=True),
             "transactionIdInUse")


def test_s3_5_transaction_id_reused_after_explicit_confirmation(lab: Lab) -> None:
    reference, secret = lab.registration()
    transaction = os.urandom(16)
    sender = parse_subject("CN=sensor-7")
    header = RequestHeader(sender, sender_kid=reference.encode(), transaction_id=transaction)
    reply = lab.post(encode_request(header, "ir", cert_req_messages(new_key()),
                                    lab.mac(secret), now()))
    assert (reply.body, reply.status) == ("ip", 0)
    confirm = lab.cert_conf(reply, secret, transaction, reply.certificate(), sender,
                            reference.encode())
    assert lab.post(confirm).body == "pkiconf"
    refused(lab, _ir(lab, transaction_id=transaction, implicit_confirm=True),
             "transactionIdInUse")


# -- signature protection (§3.1 sender and senderKID; §3.5 order of checks) ----------------

def test_s3_1_signature_sender_other_than_the_protection_subject(lab: Lab) -> None:
    identity = lab.enroll()
    der = lab.signed(identity, "cr", cert_req_messages(new_key()),
                     sender=parse_subject("CN=someone-else"))
    refused(lab, der, "badMessageCheck")


def test_s3_1_signature_without_sender_kid_is_bad_message_check(lab: Lab) -> None:
    identity = lab.enroll()
    der = lab.signed(identity, "cr", cert_req_messages(new_key()), sender_kid=None)
    refused(lab, der, "badMessageCheck")


def test_s3_1_signature_sender_kid_other_than_the_ski(lab: Lab) -> None:
    identity = lab.enroll()
    der = lab.signed(identity, "cr", cert_req_messages(new_key()), sender_kid=os.urandom(20))
    refused(lab, der, "badMessageCheck")


def test_s3_5_a_foreign_signer_is_signer_not_trusted(lab: Lab) -> None:
    """Protection and the signer's chain come before the registration lookup: a
    self-made certificate is signerNotTrusted, not notAuthorized."""
    key = new_key()
    name = parse_subject("CN=sensor-7")
    start = now() - timedelta(minutes=1)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + timedelta(days=1))
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  False)
                   .sign(key, hashes.SHA256()))
    header = RequestHeader(name, sender_kid=x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()).digest)
    der = encode_request(header, "ir", cert_req_messages(new_key()), KeySignature(key), now(),
                         (certificate,))
    refused(lab, der, "signerNotTrusted")


def test_s3_5_a_revoked_signer_is_cert_revoked(lab: Lab) -> None:
    identity = lab.enroll()
    lab.pki.revocation.revoke(CA_LABEL, identity.certificate.serial_number,
                              x509.ReasonFlags.key_compromise, "test")
    der = lab.signed(identity, "cr", cert_req_messages(new_key()))
    refused(lab, der, "certRevoked")


CA_LABEL = "operatorco-operations"


# -- malformed header variants (hypothesis) ------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(transaction=st.binary(min_size=65, max_size=80) | st.just(b""),
       nonce=st.binary(max_size=15))
def test_s3_1_malformed_transaction_id_or_nonce_is_refused(
        lab: Lab, transaction: bytes, nonce: bytes) -> None:
    reply = lab.post(_ir(lab, transaction_id=transaction, sender_nonce=nonce))
    assert reply.body == "error" and reply.status == 2
    assert reply.failures in ({"badDataFormat"}, {"badSenderNonce"})
    if not transaction or len(transaction) > 64:
        assert reply.failures == {"badDataFormat"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(min_size=1, max_size=40))
def test_s3_1_any_non_null_implicit_confirm_value_is_refused(lab: Lab, value: bytes) -> None:
    """Whatever follows the OID in the InfoTypeAndValue: never an ip. Bytes that make no
    DER are badDataFormat already in the decoder; a value other than NULL here."""
    der = _ir(lab, general_info=(_itav(IMPLICIT_OID, tlv(OCTET_STRING, value)),))
    reply = lab.post(der)
    assert (reply.body, reply.status, reply.failures) == ("error", 2, {"badDataFormat"})


def test_s3_7_an_unknown_general_info_entry_is_tolerated(lab: Lab) -> None:
    """Forward compatibility: a generalInfo infoType we do not know (here a private OID
    with a value) is ignored, the request served."""
    unknown = _itav(bytes.fromhex("060a2b0601040182e95a0101"), tlv(OCTET_STRING, b"future"))
    reply = lab.post(_ir(lab, implicit_confirm=True, general_info=(unknown,)))
    assert (reply.body, reply.status) == ("ip", 0)
