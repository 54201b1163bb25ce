"""The EST codecs (iotpki.wire.est) on their own: encode/decode pairs and malformed input."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.wire.errors import DecodeError
from iotpki.wire.est import (
    CsrAttribute,
    csr_attributes_for_key_type,
    decode_base64_body,
    decode_certs_only,
    decode_csr_attributes,
    decode_csr_body,
    decode_serverkeygen,
    encode_certs_only,
    encode_csr_attributes,
    encode_serverkeygen,
)
from iotpki.wire.keys import generate_private_key
from tests.factories import make_csr


def _self_signed(name: str) -> x509.Certificate:
    key = generate_private_key("ec-p256")
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_certs_only_round_trip_in_lines() -> None:
    certificates = [_self_signed("a"), _self_signed("b")]
    body = encode_certs_only(certificates)
    assert all(len(line) <= 64 for line in body.splitlines())
    # SignedData.certificates is a SET OF: the order is not kept.
    assert set(decode_certs_only(body)) == set(certificates)
    assert set(decode_certs_only(body.replace(b"\n", b"\r\n"))) == set(certificates)


def test_csr_body_accepts_base64_der_and_pem() -> None:
    der, _ = make_csr("sensor-1")
    assert decode_csr_body(base64.encodebytes(der)) == der
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
    assert decode_csr_body(pem) == der


@pytest.mark.parametrize("body", [b"", b"***", b"aGVsbG8=", b"MIIB"], ids=[
    "empty", "not-base64", "not-der", "truncated"])
def test_malformed_csr_bodies(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_csr_body(body)


def test_base64_rejects_non_alphabet_characters() -> None:
    with pytest.raises(DecodeError):
        decode_base64_body(b"aGVs bG8=!")


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048", "ed25519"])
def test_csr_attributes_round_trip(key_type: str) -> None:
    attributes = csr_attributes_for_key_type(key_type)
    assert decode_csr_attributes(encode_csr_attributes(attributes)) == attributes


def test_empty_csr_attributes_and_garbage() -> None:
    assert decode_csr_attributes(encode_csr_attributes([])) == []
    assert encode_csr_attributes([CsrAttribute("1.2.3")]) == bytes.fromhex("30040602" "2a03")
    with pytest.raises(DecodeError):
        decode_csr_attributes(b"\x30\x05\x06")


def test_serverkeygen_round_trip() -> None:
    certificate = _self_signed("device")
    key = generate_private_key("ec-p256").private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    media, body = encode_serverkeygen(key, certificate)
    parts = decode_serverkeygen(media, body)
    assert parts.private_key_pkcs8 == key and parts.certificate == certificate
    with pytest.raises(DecodeError):
        decode_serverkeygen("text/plain", body)
