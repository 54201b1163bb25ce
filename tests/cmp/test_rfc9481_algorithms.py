"""RFC 9481 algorithms of message protection as RFC 9483 §3.2 uses them: RSASSA-PSS
signatures are verified (§3.1.2); key-based MACs (§6.2: HMAC, KMAC, AES-GMAC) and unknown
algorithms are refused with badAlg, never tried as a signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotpki.wire.cmp.requests import RequestHeader, encode_request
from iotpki.wire.der import INTEGER, SEQUENCE, tlv
from iotpki.wire.der import object_identifier as oid
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import Identity, Lab, cert_req_messages, new_key, now, refused

RSASSA_PSS, MGF1 = "1.2.840.113549.1.1.10", "1.2.840.113549.1.1.8"
HASH_OIDS = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1",
             "sha384": "2.16.840.1.101.3.4.2.2"}


def _pss_parameters(hash_name: str, salt: int) -> bytes:
    hash_id = tlv(SEQUENCE, oid(HASH_OIDS[hash_name]))
    return tlv(SEQUENCE, tlv(0xA0, hash_id) + tlv(0xA1, tlv(SEQUENCE, oid(MGF1) + hash_id))
               + tlv(0xA2, tlv(INTEGER, bytes((salt,)))))


class PSSSignature:
    """RSASSA-PSS protection (RFC 9481 §3.1.2) by an RSA key."""

    def __init__(self, key: object, hash_name: str = "sha256") -> None:
        self._key = key
        choices: dict[str, hashes.HashAlgorithm] = {
            "sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384()}
        self._hash = choices[hash_name]
        self._name = hash_name

    def algorithm(self) -> tuple[str, bytes | None]:
        return RSASSA_PSS, _pss_parameters(self._name, self._hash.digest_size)

    def protect(self, data: bytes) -> bytes:
        pss = padding.PSS(padding.MGF1(self._hash), self._hash.digest_size)
        return self._key.sign(data, pss, self._hash)  # type: ignore[attr-defined, no-any-return]


class KeyedMAC:
    """A key-based MAC as protectionAlg (RFC 9481 §6.2), keyed with the shared secret."""

    def __init__(self, algorithm: str, secret: bytes) -> None:
        self._algorithm, self._secret = algorithm, secret

    def algorithm(self) -> tuple[str, bytes | None]:
        return self._algorithm, None

    def protect(self, data: bytes) -> bytes:
        return hmac.new(self._secret, data, hashlib.sha256).digest()


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_rfc9481_s3_1_2_rsassa_pss_protection_is_verified(lab: Lab, hash_name: str) -> None:
    identity = lab.enroll(key_type="rsa-2048")
    der = lab.signed(identity, "cr", cert_req_messages(new_key()),
                     protection=PSSSignature(identity.key, hash_name), implicit_confirm=True)
    reply = lab.post(der)
    assert (reply.body, reply.status) == ("cp", 0), reply


def test_rfc9481_s3_1_2_a_wrong_pss_signature_is_bad_message_check(lab: Lab) -> None:
    identity, other = lab.enroll(key_type="rsa-2048"), lab.enroll(key_type="rsa-2048")
    der = lab.signed(identity, "cr", cert_req_messages(new_key()),
                     protection=PSSSignature(other.key))
    refused(lab, der, "badMessageCheck")


def test_rfc9481_s3_1_2_pss_with_sha1_is_bad_alg(lab: Lab) -> None:
    identity = lab.enroll(key_type="rsa-2048")
    der = lab.signed(identity, "cr", cert_req_messages(new_key()),
                     protection=PSSSignature(identity.key, "sha1"))
    refused(lab, der, "badAlg")


@pytest.mark.parametrize("algorithm", [
    "1.2.840.113549.2.9",  # HMAC-SHA256
    "2.16.840.1.101.3.4.2.19",  # KMAC128
    "2.16.840.1.101.3.4.1.9",  # AES-128-GMAC
    "1.2.3.4.5",  # unknown
])
def test_rfc9481_s6_2_key_based_mac_protection_is_bad_alg(lab: Lab, algorithm: str) -> None:
    reference, secret = lab.registration()
    header = RequestHeader(parse_subject("CN=sensor-7"), sender_kid=reference.encode())
    der = encode_request(header, "ir", cert_req_messages(new_key()),
                         KeyedMAC(algorithm, secret), now())
    refused(lab, der, "badAlg")


class RawPSS(PSSSignature):
    """RSASSA-PSS with arbitrary parameter bytes (hypothesis)."""

    def __init__(self, key: object, parameters: bytes) -> None:
        super().__init__(key)
        self._parameters = parameters

    def algorithm(self) -> tuple[str, bytes | None]:
        return RSASSA_PSS, self._parameters


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parameters=st.binary(min_size=1, max_size=60).map(lambda b: tlv(SEQUENCE, b))
       | st.sampled_from([_pss_parameters("sha256", 32)[:-1] + b"\xff",
                          tlv(SEQUENCE, tlv(0xA1, tlv(SEQUENCE, oid(MGF1) + b"\x05\x00")))]))
def test_rfc9481_s3_1_2_any_malformed_pss_parameters_are_refused_cleanly(
        lab: Lab, parameters: bytes) -> None:
    """Whatever the parameters, an error message with badAlg, badMessageCheck or
    badDataFormat: never systemFailure, never a certificate."""
    identity = _rsa_identity(lab)
    der = lab.signed(identity, "cr", cert_req_messages(new_key()),
                     protection=RawPSS(identity.key, parameters))
    reply = lab.post(der)
    assert reply.body == "error" and reply.status == 2
    assert reply.failures <= {"badAlg", "badMessageCheck", "badDataFormat"} and reply.failures


_RSA: list[Identity] = []


def _rsa_identity(lab: Lab) -> Identity:
    """One RSA identity for the hypothesis examples (a key takes a while to make)."""
    if not _RSA:
        _RSA.append(lab.enroll(key_type="rsa-2048"))
    return _RSA[0]
