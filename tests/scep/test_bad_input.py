"""Hostile input (issue 16 "Bad input"): a message that allows no CertRep gets HTTP 400; one
that does gets a CertRep FAILURE with the failInfo of RFC 8894 §3.2.1.4; never a 500,
nothing issued, every refusal audited."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from iotpki.wire.scep.attributes import FailInfo, MessageType, PKIStatus
from iotpki.wire.scep.envelope import DES3, encode_envelope
from iotpki.wire.scep.message import Attributes, encode_pki_message
from tests.scep.conftest import Requester, Scene, csr_der, fetch, self_signed


def failure(scep: Scene, requester: Requester, body: bytes) -> FailInfo | None:
    status, _, reply = scep.post("", body)
    assert status == 200, reply
    message, content = requester.open(reply, scep.ra())
    assert message.pki_status is PKIStatus.FAILURE and content is None
    return message.fail_info


def test_not_cms_is_400_and_audited(scep: Scene) -> None:
    for body in (b"\x30\x03\x02\x01\x01", b"hello", b"\x30\x80" + b"\x00" * 10):
        status, media, text = scep.post("", body)
        assert status == 400 and media.startswith("text/plain"), text
    assert [r["reason"] for r in scep.refusals()] == ["malformed-request"] * 3


def test_query_errors_are_400(scep: Scene) -> None:
    assert fetch(f"{scep.url()}?operation=PKIOperation")[0] == 400  # no message
    assert fetch(f"{scep.url()}?operation=PKIOperation&message=%25%25%25")[0] == 400
    assert fetch(f"{scep.url()}?operation=Nonsense")[0] == 400
    assert fetch(f"{scep.url('no-such-label')}?operation=GetCACaps")[0] == 404


def test_message_without_transaction_attributes_is_400(scep: Scene) -> None:
    """§3.2.1: without transactionID and senderNonce there is nothing to answer to."""
    requester = Requester.new()
    message, _ = requester.message(MessageType.PKCS_REQ, b"x", scep.ra())
    truncated = message.replace(bytes.fromhex("060a6086480186f8450109"), bytes.fromhex(
        "060a6086480186f8450109")[:-1] + b"\x7f", 1)  # no messageType attribute any more
    status, _, _ = scep.post("", truncated)
    assert status == 400


def test_wrong_recipient_is_bad_message_check(scep: Scene) -> None:
    """The pkcsPKIEnvelope is encrypted for another certificate than the RA's."""
    requester = Requester.new()
    stranger = Requester.new("not-the-ra").certificate
    envelope = encode_envelope(csr_der(requester.key, "CN=x", "a:b"), stranger)
    body = encode_pki_message(Attributes(MessageType.PKCS_REQ, requester.transaction_id(),
                                         os.urandom(16)), envelope, requester.key,
                              requester.certificate, [requester.certificate], datetime.now(UTC))
    assert failure(scep, requester, body) is FailInfo.BAD_MESSAGE_CHECK
    assert [r["reason"] for r in scep.refusals()] == ["wrong-recipient"]
    assert scep.issued_here() == 0


def test_bad_signature_is_bad_message_check(scep: Scene) -> None:
    requester = Requester.new()
    body, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", scep.secret_registration("CN=scep-badsig")), scep.ra())
    tampered = body[:-5] + bytes([body[-5] ^ 0x01]) + body[-4:]  # in the signature
    assert failure(scep, requester, tampered) is FailInfo.BAD_MESSAGE_CHECK
    assert [r["reason"] for r in scep.refusals()] == ["bad-signature"]
    assert scep.issued_here() == 0


def test_legacy_algorithms_refused_as_bad_alg_s3_5_2(scep: Scene) -> None:
    requester = Requester.new()
    csr = csr_der(requester.key, "CN=sensor-7", scep.secret_registration("CN=scep-3des"))
    des3, _ = requester.message(MessageType.PKCS_REQ, csr, scep.ra(), cipher=DES3)
    sha1, _ = requester.message(MessageType.PKCS_REQ, csr, scep.ra(), digest=hashes.SHA1())
    assert failure(scep, requester, des3) is FailInfo.BAD_ALG
    assert failure(scep, requester, sha1) is FailInfo.BAD_ALG
    assert scep.issued_here() == 0


def test_ec_signer_cannot_receive_the_reply_s3_2_2(scep: Scene) -> None:
    """The reply is encrypted to the signer's certificate: it must be RSA (badAlg)."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(key, Requester.new().certificate.subject)
    rsa_requester = Requester.new()
    envelope = encode_envelope(csr_der(rsa_requester.key, "CN=x", "a:b"), scep.ra())
    body = encode_pki_message(Attributes(MessageType.PKCS_REQ, "ec", os.urandom(16)), envelope,
                              key, certificate, [certificate], datetime.now(UTC))
    status, _, reply = scep.post("", body)
    assert status == 200
    from iotpki.wire.scep.message import decode_pki_message
    answer = decode_pki_message(reply)
    assert answer.pki_status is PKIStatus.FAILURE and answer.fail_info is FailInfo.BAD_ALG


def test_unknown_message_type_is_bad_request(scep: Scene) -> None:
    requester = Requester.new()
    body, _ = requester.message(18, b"whatever", scep.ra())  # §3.2.1.2: 18 is unassigned
    assert failure(scep, requester, body) is FailInfo.BAD_REQUEST


def test_mutated_messages_never_fail_the_server(scep: Scene) -> None:
    """Random byte flips of a valid PKCSReq: 200 (a CertRep) or 400, never 5xx, nothing
    issued (the challenge names no registration)."""
    requester = Requester.new()
    body, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", "nobody:nothing"), scep.ra())
    chance = random.Random(8894)
    for _ in range(40):
        mutated = bytearray(body)
        for _ in range(chance.randint(1, 4)):
            mutated[chance.randrange(len(mutated))] = chance.randrange(256)
        status, _, _ = scep.post("", bytes(mutated))
        assert status in (200, 400)
    assert scep.issued_here() == 0


def test_signer_with_a_non_positive_serial_is_400(scep: Scene) -> None:
    """RFC 5280 §4.1.2.2: a serial number is positive; `cryptography` only warns (and will
    refuse): the message is malformed, found by the fuzz run."""
    requester = Requester.new()
    key = requester.key
    now = datetime.now(UTC)
    certificate = self_signed(key, requester.certificate.subject)
    body = encode_pki_message(Attributes(MessageType.PKCS_REQ, "t", os.urandom(16)), b"x", key,
                              certificate, [certificate], now)
    serial = certificate.serial_number.to_bytes(20, "big").lstrip(b"\x00")
    serial = (b"\x00" + serial) if serial[0] & 0x80 else serial
    encoded = bytes([0x02, len(serial)]) + serial
    negative = bytes([0x02, len(serial)]) + bytes([serial[0] | 0x80]) + serial[1:]
    assert encoded in body
    status, _, _ = scep.post("", body.replace(encoded, negative))
    assert status == 400
