"""PBMAC1 (RFC 9481 §6.1.1, RFC 8018 §7.1): the codec against an independent computation
(hashlib's PBKDF2 and hmac), hypothesis round trips, iteration and salt limits, and a
PBMAC1-protected central-key ir answered with PBMAC1 by the CMP endpoint in process (the
request comes from our encoder: OpenSSL 3.0 speaks only PasswordBasedMac, so no peer needs
the socket; openssl cms opens the delivered key)."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg, encode_mac_request
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.pbmac1 import (
    PBMAC1,
    PBMAC1Error,
    PBMAC1Parameters,
    decode_pbmac1_parameters,
)
from iotpki.wire.cmp.protection import MACProtection, ProtectionError, verify_mac
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import Scene, error_failures
from tests.cmp.keygen_peer import certified_key_pair, open_key_delivery, same_key

HMACS = {"1.2.840.113549.2.7": "sha1", "1.2.840.113549.2.9": "sha256",
         "1.2.840.113549.2.10": "sha384", "1.2.840.113549.2.11": "sha512"}
SHA256 = "1.2.840.113549.2.9"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_pbmac1_is_pbkdf2_then_hmac() -> None:
    salt, secret, data = b"0123456789abcdef", b"s3cret", b"protected part"
    key = hashlib.pbkdf2_hmac("sha256", secret, salt, 1000, 32)
    expected = hmac.new(key, data, "sha512").digest()
    parameters = PBMAC1Parameters(salt, 1000, 32, SHA256, "1.2.840.113549.2.11")
    assert parameters.mac_over(secret, data) == expected


@settings(max_examples=40, deadline=None)
@given(salt=st.binary(min_size=8, max_size=64), iterations=st.integers(1000, 1200),
       key_length=st.one_of(st.none(), st.integers(16, 64)),
       prf=st.sampled_from(sorted(HMACS)), mac=st.sampled_from(sorted(HMACS)))
def test_parameters_round_trip(salt: bytes, iterations: int, key_length: int | None,
                               prf: str, mac: str) -> None:
    parameters = PBMAC1Parameters(salt, iterations, key_length, prf, mac)
    oid, der = parameters.encode()
    assert oid == PBMAC1 and decode_pbmac1_parameters(der) == parameters
    length = key_length or hashlib.new(HMACS[mac]).digest_size
    key = hashlib.pbkdf2_hmac(HMACS[prf], b"pw", salt, iterations, length)
    assert parameters.mac_over(b"pw", b"m") == hmac.new(key, b"m", HMACS[mac]).digest()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_parameters_are_refused_cleanly(data: bytes) -> None:
    try:
        decode_pbmac1_parameters(data).check()
    except PBMAC1Error as exc:
        assert exc.failure in ("badDataFormat", "badAlg", "badMessageCheck")


def test_pbes2_labelled_kdf_is_read_as_pbkdf2() -> None:
    """BouncyCastle labels PBMAC1's PBKDF2-params with id-PBES2 (seen from
    tests/cmp/test_bouncycastle.py); accepted as PBKDF2, and answered with id-PBKDF2."""
    parameters = PBMAC1Parameters(b"0123456789abcdef", 1000, 32, SHA256, SHA256)
    _, der = parameters.encode()
    pbkdf2, pbes2 = bytes.fromhex("06092a864886f70d01050c"), bytes.fromhex("06092a864886f70d01050d")
    assert decode_pbmac1_parameters(der.replace(pbkdf2, pbes2)) == parameters
    assert pbkdf2 in parameters.fresh().encode()[1]
    with pytest.raises(PBMAC1Error) as other:  # any other KDF stays unsupported
        decode_pbmac1_parameters(der.replace(pbkdf2, bytes.fromhex("06092a864886f70d01050e")))
    assert other.value.failure == "badAlg"


@pytest.mark.parametrize(("change", "failure"), [
    ({"iterations": 999}, "badMessageCheck"), ({"iterations": 10**9}, "badAlg"),
    ({"salt": b"short"}, "badMessageCheck"), ({"key_length": 8}, "badAlg"),
    ({"mac": "1.2.3.4"}, "badAlg")])
def test_limits(change: dict[str, object], failure: str) -> None:
    fields: dict[str, object] = {"salt": b"0123456789abcdef", "iterations": 1000,
                                 "key_length": None, "prf": SHA256, "mac": SHA256}
    parameters = PBMAC1Parameters(**{**fields, **change})  # type: ignore[arg-type]
    with pytest.raises(PBMAC1Error) as refused:
        parameters.mac_over(b"secret", b"data")
    assert refused.value.failure == failure


def _pbmac1(secret: str, iterations: int = 2000) -> MACProtection:
    return MACProtection(secret.encode(), PBMAC1Parameters(os.urandom(16), iterations, None,
                                                           SHA256, SHA256))


def test_pbmac1_protected_message_verifies_and_tampering_fails() -> None:
    der = encode_mac_request("genm", tlv(SEQUENCE, b""), _pbmac1("pw"), b"kid", NOW)
    message = decode_pki_message(der)
    verify_mac(message, b"pw")
    with pytest.raises(ProtectionError) as wrong:
        verify_mac(message, b"other")
    assert wrong.value.failure == "badMessageCheck"


@pytest.mark.interop
def test_pbmac1_ir_against_the_server(app_scene: Scene) -> None:
    scene = app_scene
    registration, secret = scene.secret_registration("CN=sensor-7")
    request = encode_keygen_cert_req_msg(parse_subject("CN=sensor-7"))
    der = encode_mac_request("ir", tlv(SEQUENCE, request), _pbmac1(secret),
                             registration.encode(), datetime.now(UTC), implicit_confirm=True)
    status, _, answer = scene.post(der)
    assert status == 200
    message = decode_pki_message(answer)
    assert message.header.protection_algorithm == PBMAC1  # answered as asked
    verify_mac(message, secret.encode())
    certificate, enveloped = certified_key_pair(answer)
    key = open_key_delivery(scene.dir, enveloped, ["-pwri_password", secret],
                            scene.dir / "root.pem")
    assert same_key(key, certificate)


def test_too_few_pbmac1_iterations_are_refused_and_audited(app_scene: Scene) -> None:
    scene = app_scene
    registration, secret = scene.secret_registration("CN=sensor-7")
    request = encode_keygen_cert_req_msg(parse_subject("CN=sensor-7"))
    der = encode_mac_request("ir", tlv(SEQUENCE, request), _Unchecked(secret, 10),
                             registration.encode(), datetime.now(UTC))
    _, _, answer = scene.post(der)
    assert error_failures(answer) == ("error", {"badMessageCheck"})
    assert [r["failure"] for r in scene.audit("cmp.request")] == ["badMessageCheck"]
    assert scene.audit("key.server-generated") == []


class _Unchecked:
    """A client that MACs with too few iterations (our own encoder refuses to)."""

    def __init__(self, secret: str, iterations: int) -> None:
        self._secret = secret.encode()
        self._parameters = PBMAC1Parameters(os.urandom(16), iterations, None, SHA256, SHA256)

    def algorithm(self) -> tuple[str, bytes | None]:
        return self._parameters.encode()

    def protect(self, data: bytes) -> bytes:
        key = hashlib.pbkdf2_hmac("sha256", self._secret, self._parameters.salt,
                                  self._parameters.iterations, 32)
        return hmac.new(key, data, "sha256").digest()
