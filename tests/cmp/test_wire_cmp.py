"""The CMP codec (`iotpki.wire.cmp`) on its own: decoder robustness, protection round trips
and the limits on PasswordBasedMac parameters (RFC 9481 §6.1.1)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpki.keys.errors import KeyProtectionError
from iotpki.keys.sealing import PassphraseSealer
from iotpki.wire.cmp.crmf import CRMFRequest
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.protection import (
    MACProtection,
    PBMParameters,
    ProtectionError,
    SignatureProtection,
    verify_mac,
    verify_signature_protection,
)
from iotpki.wire.cmp.responses import encode_response, error_body, genp_body, new_nonce
from iotpki.wire.cmp.transactions import cert_hash
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import generate_private_key

SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _self_signed() -> tuple[object, x509.Certificate]:
    key = generate_private_key("ec-p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cmp test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(NOW)
            .not_valid_after(NOW + timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _mac_message(secret: bytes, iterations: int = 1000) -> bytes:
    parameters = PBMParameters(b"salt-salt-salt16", SHA256, iterations, HMAC_SHA256)
    return encode_response(None, genp_body([("1.3.6.1.5.5.7.4.17", None)]),
                           MACProtection(secret, parameters), NOW, new_nonce())


def test_mac_protection_round_trip_and_tampering() -> None:
    der = _mac_message(b"one-time secret")
    message = decode_pki_message(der)
    assert message.body_type == "genp" and message.header.transaction_id
    verify_mac(message, b"one-time secret")
    with pytest.raises(ProtectionError) as wrong:
        verify_mac(message, b"another secret")
    assert wrong.value.failure == "badMessageCheck"


@pytest.mark.parametrize(("iterations", "failure"), [(0, "badMessageCheck"), (99, "badMessageCheck"),
                                                    (10**9, "badAlg")])
def test_absurd_iteration_counts_are_refused_before_any_work(iterations: int, failure: str) -> None:
    parameters = PBMParameters(b"0123456789abcdef", SHA256, iterations, HMAC_SHA256)
    with pytest.raises(ProtectionError) as refused:
        parameters.mac_over(b"secret", b"data")
    assert refused.value.failure == failure


def test_unknown_mac_algorithm_is_bad_alg() -> None:
    with pytest.raises(ProtectionError) as refused:
        PBMParameters(b"0123456789abcdef", "1.2.3.4", 1000, HMAC_SHA256).check()
    assert refused.value.failure == "badAlg"


def test_pbm_key_is_the_owf_iterated_over_secret_and_salt() -> None:
    """RFC 9810 §5.1.3.1, computed independently with hashlib/hmac."""
    import hmac as std_hmac
    salt, secret, data = b"0123456789abcdef", b"s3cret", b"protected part"
    key = secret + salt
    for _ in range(1000):
        key = hashlib.sha256(key).digest()
    expected = std_hmac.new(key, data, "sha256").digest()
    assert PBMParameters(salt, SHA256, 1000, HMAC_SHA256).mac_over(secret, data) == expected


def test_signature_protection_round_trip_and_tampering() -> None:
    key, cert = _self_signed()
    der = encode_response(None, error_body("badRequest", "x"),
                          SignatureProtection(key, cert, ()), NOW, new_nonce())
    message = decode_pki_message(der)
    assert verify_signature_protection(message) == cert
    assert message.header.sender_kid == cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    tampered = der.replace(b"\x0c\x01x", b"\x0c\x01y", 1)  # the status string, protected
    assert tampered != der
    with pytest.raises((ProtectionError, DecodeError)):
        verify_signature_protection(decode_pki_message(tampered))


def test_cert_hash_follows_the_signature_hash() -> None:
    _, cert = _self_signed()
    assert cert_hash(cert, None) == hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    assert cert_hash(cert, "2.16.840.1.101.3.4.2.2") == hashlib.sha384(
        cert.public_bytes(Encoding.DER)).digest()


def test_sealed_secrets() -> None:
    sealer = PassphraseSealer(b"ca passphrase")
    sealed = sealer.seal(b"one-time secret")
    assert b"one-time secret" not in sealed
    assert sealer.unseal(sealed) == b"one-time secret"
    with pytest.raises(KeyProtectionError):
        PassphraseSealer(b"other passphrase").unseal(sealed)
    with pytest.raises(KeyProtectionError):
        sealer.unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_raises_anything_but_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pki_message(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_messages_never_raise_anything_but_decode_error(data: st.DataObject) -> None:
    der = bytearray(_mac_message(b"secret", 100))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(der) - 1))
        der[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_pki_message(bytes(der))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_crmf_garbage_is_a_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        CRMFRequest(data)


def test_encoded_requests_decode_and_verify() -> None:
    from iotpki.wire.cmp.messages import CertRequests
    from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
    key, cert = _self_signed()
    new_key = generate_private_key("ec-p256")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-1")])
    message = decode_pki_message(encode_signed_request(
        "cr", encode_cert_req_msg(new_key, subject), key, (cert,), NOW))
    assert message.body_type == "cr" and message.header.implicit_confirm
    assert verify_signature_protection(message) == cert
    assert isinstance(message.body, CertRequests)
    request = message.body.requests[0]
    assert request.is_signature_valid and request.subject == subject
    assert request.public_key() == new_key.public_key()


def test_central_keygen_templates_name_the_key_type() -> None:
    """RFC 9483 §4.1.6: no publicKey, or an algorithm with an empty key, asks for a key."""
    from iotpki.wire.cmp.central_keygen import requested_key_types
    from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg
    from iotpki.wire.cms_envelope import algorithm_id, oid
    profile = ("ec-p256", "ec-p384", "rsa-2048")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor")])
    bare = CRMFRequest(encode_keygen_cert_req_msg(subject))
    assert bare.central_keygen and requested_key_types(bare, profile) == profile
    assert not bare.is_signature_valid
    p384 = algorithm_id("1.2.840.10045.2.1", oid("1.3.132.0.34"))
    assert requested_key_types(CRMFRequest(encode_keygen_cert_req_msg(subject, p384)),
                               profile) == ("ec-p384",)
    rsa = algorithm_id("1.2.840.113549.1.1.1", b"\x05\x00")
    assert requested_key_types(CRMFRequest(encode_keygen_cert_req_msg(subject, rsa)),
                               profile) == ("rsa-2048",)
    ed448 = algorithm_id("1.3.101.113")
    assert requested_key_types(CRMFRequest(encode_keygen_cert_req_msg(subject, ed448)),
                               profile) == ()
