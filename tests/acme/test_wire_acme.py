"""ACME codecs on hostile input: every decoder raises its own error, never anything else
(RFC 8555 §6.2 JWS, RFC 8949 CBOR of device-attest-01 attestation objects)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpki.wire import cbor
from iotpki.wire.acme.attestation import AttestationError, decode_attestation_response
from iotpki.wire.acme.jws import (
    JWSError,
    b64url_encode,
    decode_jws,
    public_key_from_jwk,
    sign_jws,
    thumbprint,
    verify_jws,
)
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import generate_private_key


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_body_is_a_jws_or_a_jws_error(body: bytes) -> None:
    with contextlib.suppress(JWSError):
        decode_jws(body)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d"]),
                       st.one_of(st.text(max_size=20), st.integers(), st.none())))
def test_any_jwk_is_a_key_or_a_jws_error(jwk: dict) -> None:
    with contextlib.suppress(JWSError):
        public_key_from_jwk(jwk)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_cbor_decodes_or_raises_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        cbor.decode(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_attestation_object_decodes_or_is_bad_attestation(data: bytes) -> None:
    try:
        decode_attestation_response({"attObj": b64url_encode(data)})
    except AttestationError as exc:
        assert exc.problem == "badAttestationStatement"


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048", "ed25519"])
def test_rfc7638_thumbprint_and_round_trip(key_type: str) -> None:
    key = generate_private_key(key_type)
    body = json.dumps(sign_jws(key, {"a": 1}, "https://x/new-order", "n")).encode()
    jws = decode_jws(body)
    public = public_key_from_jwk(jws.jwk or {})
    verify_jws(jws, public)
    assert thumbprint(public) == thumbprint(key.public_key())


def test_rfc7638_s3_1_example_thumbprint() -> None:
    """RFC 7638 §3.1: the example RSA key's thumbprint."""
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6t"
         "Soc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
         "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
         "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnq"
         "DKgw")
    key = public_key_from_jwk({"kty": "RSA", "e": "AQAB", "n": n})
    assert thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc9773_s4_3_retry_after_is_bounded() -> None:
    from iotpki.agent.acme_client import RETRY_DEFAULT, RETRY_MAX, RETRY_MIN, _retry_after

    assert _retry_after("21600") == 21600
    assert _retry_after(None) == RETRY_DEFAULT
    assert _retry_after("1") == RETRY_MIN  # not more often than a minute
    assert _retry_after("9999999") == RETRY_MAX  # not less often than a day
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == RETRY_MIN  # a date in the past
