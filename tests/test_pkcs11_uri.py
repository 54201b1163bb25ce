"""RFC 7512 URIs and the signature → PKCS#11 mechanism rules (pure codecs, no token)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from iotpki.wire.errors import DecodeError
from iotpki.wire.external_key import SignatureRequest
from iotpki.wire.pkcs11_mechanisms import (
    MechanismUnavailableError,
    missing_mechanisms,
    token_signature,
)
from iotpki.wire.pkcs11_uri import PKCS11URI, decode_pkcs11_uri, encode_pkcs11_uri


def test_round_trip_with_percent_encoded_id_and_label() -> None:
    uri = PKCS11URI(token="CA token", object="root;key", id=b"\x00\xff\x10", type="private")
    text = encode_pkcs11_uri(uri)
    assert text == "pkcs11:token=CA%20token;object=root%3Bkey;id=%00%ff%10;type=private"
    assert decode_pkcs11_uri(text) == uri
    assert uri.token_part == PKCS11URI(token="CA token")


def test_rfc7512_examples_decode() -> None:
    # RFC 7512 §3.3 examples (object and token attributes, a query attribute)
    uri = decode_pkcs11_uri("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
                            "manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;"
                            "type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial="
                            "?pin-source=file:/etc/token_pin")
    assert uri.token == "The Software PKCS#11 Softtoken"
    assert uri.manufacturer == "Snake Oil, Inc." and uri.model == "1.0"
    assert uri.id == bytes.fromhex("69953e5cf4bdec91") and uri.type == "cert"
    assert uri.query == (("pin-source", "file:/etc/token_pin"),)
    assert decode_pkcs11_uri("pkcs11:slot-id=3").slot_id == 3


@pytest.mark.parametrize(("text", "why"), [
    ("file:/x", "not a PKCS#11 URI"),
    ("pkcs11:token=a;token=b", "repeats"),
    ("pkcs11:token=a;flavour=x", "not understood"),
    ("pkcs11:type=secret", "type must be"),
    ("pkcs11:slot-id=x", "decimal"),
    ("pkcs11:token", "without a value"),
    ("pkcs11:token=a?pin-value=1234", "PIN in a PKCS#11 URI"),
])
def test_bad_uris_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode_pkcs11_uri(text)


def test_ecdsa_prefers_the_raw_mechanism_over_the_digest() -> None:
    request = SignatureRequest("ecdsa", hashes.SHA256(), b"d" * 32, b"message")
    assert token_signature(request, {"ECDSA", "ECDSA_SHA256"}).data == b"d" * 32
    fallback = token_signature(request, {"ECDSA_SHA256"})
    assert (fallback.mechanism, fallback.data) == ("ECDSA_SHA256", b"message")
    with pytest.raises(MechanismUnavailableError, match="neither CKM_ECDSA nor CKM_ECDSA_SHA256"):
        token_signature(request, {"RSA_PKCS"})


def test_rsa_pkcs1_signs_the_digest_info_and_pss_carries_its_parameters() -> None:
    digest = bytes(range(32))
    pkcs1 = token_signature(SignatureRequest("rsa-pkcs1v15", hashes.SHA256(), digest), {"RSA_PKCS"})
    # RFC 8017 §9.2 note 1: the SHA-256 DigestInfo prefix
    assert pkcs1.data == bytes.fromhex("3031300d060960864801650304020105000420") + digest
    pss = token_signature(SignatureRequest("rsa-pss", hashes.SHA384(), b"x" * 48, None, 48),
                          {"RSA_PKCS_PSS"})
    assert pss.mechanism == "RSA_PKCS_PSS" and pss.pss == ("SHA384", "SHA384", 48)
    with pytest.raises(MechanismUnavailableError, match="SHA-256/384/512"):
        token_signature(SignatureRequest("ecdsa", hashes.SHA1(), b"x" * 20), {"ECDSA"})


def test_missing_mechanisms_are_named() -> None:
    assert missing_mechanisms("ec", {"EC_KEY_PAIR_GEN", "ECDSA"}) == []
    assert missing_mechanisms("rsa", {"EC_KEY_PAIR_GEN"}) == [
        "CKM_RSA_PKCS_KEY_PAIR_GEN", "CKM_RSA_PKCS or CKM_SHA256_RSA_PKCS"]
