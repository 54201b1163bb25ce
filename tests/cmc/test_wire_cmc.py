"""The CMC codec (`iotpki.wire.cmc`), property-tested with hypothesis: PKIData (RFC 5272
§3.2.1) and PKIResponse with CMCStatusInfoV2 (§3.3, §6.1.1) round trips, the BER form of
CMS (RFC 5652 §1.1.1) read as its DER form, and total decoders (hostile bytes raise
`DecodeError`, nothing else)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpki.wire.cmc import pki_data as P
from iotpki.wire.cmc.identity_proof import identity_witness, witness_matches
from iotpki.wire.cmc.request import decode_full_pki_request, sign_full_pki_request
from iotpki.wire.cmc.response import (
    FAIL_INFO,
    CMCStatus,
    PKIResponse,
    StatusInfo,
    decode_pki_response,
    encode_pki_response,
)
from iotpki.wire.cmc.signed_data import ber_to_der_lengths, verify_signer
from iotpki.wire.errors import DecodeError
from tests.cmc.client import csr, indefinite_lengths

KEY = ec.generate_private_key(ec.SECP256R1())
CSR = csr(KEY, "CN=hypothesis")
CONTROL_TYPES = [P.TRANSACTION_ID, P.SENDER_NONCE, P.IDENTIFICATION, P.QUERY_PENDING,
                 "1.3.6.1.5.5.7.7.99"]
body_part_ids = st.lists(st.integers(1, P.MAX_BODY_PART_ID), min_size=1, max_size=6,
                         unique=True)


@settings(max_examples=100, deadline=None)
@given(ids=body_part_ids, types=st.lists(st.sampled_from(CONTROL_TYPES), min_size=5,
                                         max_size=5),
       values=st.lists(st.binary(max_size=40), min_size=5, max_size=5))
def test_pki_data_round_trip(ids: list[int], types: list[str], values: list[bytes]) -> None:
    request_id, control_ids = ids[0], ids[1:]
    controls = [P.control(i, types[n], P.octet_string(values[n]))
                for n, i in enumerate(control_ids)]
    data = P.decode_pki_data(P.encode_pki_data(controls, [P.tcr(request_id, CSR)]))
    assert [(c.body_part_id, c.type, c.value) for c in data.controls] == [
        (i, types[n], P.octet_string(values[n])) for n, i in enumerate(control_ids)]
    assert [(r.body_part_id, r.kind, r.der) for r in data.requests] == [
        (request_id, "pkcs10", CSR)]
    assert data.req_sequence == P.tlv(0x30, P.tcr(request_id, CSR))


statuses = st.builds(
    lambda status, parts, text, fail, token: StatusInfo(
        status, tuple(parts), text or None,
        fail if status is CMCStatus.FAILED else None,
        token if status is CMCStatus.PENDING else None,
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC) if status is CMCStatus.PENDING else None),
    st.sampled_from(list(CMCStatus)), st.lists(st.integers(0, P.MAX_BODY_PART_ID),
                                               min_size=1, max_size=3),
    st.text(max_size=30), st.sampled_from(sorted(FAIL_INFO)), st.binary(max_size=20))


@settings(max_examples=100, deadline=None)
@given(items=st.lists(statuses, min_size=1, max_size=3),
       transaction=st.none() | st.integers(0, 2**64), nonces=st.tuples(
           st.none() | st.binary(max_size=16), st.none() | st.binary(max_size=16)))
def test_pki_response_round_trip(items: list[StatusInfo], transaction: int | None,
                                 nonces: tuple[bytes | None, bytes | None]) -> None:
    response = PKIResponse(tuple(items), transaction, *nonces)
    assert decode_pki_response(encode_pki_response(response)) == response


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.binary(max_size=50), max_size=4))
def test_ber_request_reads_as_its_der_form(values: list[bytes]) -> None:
    """RFC 5652 §1.1.1: CMS may be BER (BouncyCastle sends indefinite lengths)."""
    controls = [P.control(n + 2, P.SENDER_NONCE, P.octet_string(v)) for n, v in
                enumerate(values)]
    der = sign_full_pki_request(P.encode_pki_data(controls, [P.tcr(1, CSR)]), KEY)
    assert ber_to_der_lengths(indefinite_lengths(der)) == der
    request = decode_full_pki_request(indefinite_lengths(der))
    verify_signer(request.signed, request.signed.signers[0], KEY.public_key())


def test_constructed_octet_string_is_joined() -> None:
    """X.690 §8.7.3: a constructed OCTET STRING is its segments' octets."""
    assert ber_to_der_lengths(bytes.fromhex("2480040161040162 0000".replace(" ", ""))) == \
        bytes.fromhex("04026162")


VALID = sign_full_pki_request(P.encode_pki_data([P.control(2, P.SENDER_NONCE,
                                                           P.octet_string(b"n"))],
                                                [P.tcr(1, CSR)]), KEY)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300) | st.builds(
    lambda at, value: VALID[:at] + value + VALID[at + len(value):],
    st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=4)))
def test_decoders_are_total(data: bytes) -> None:
    """Hostile bytes: a `DecodeError`, never another exception."""
    with contextlib.suppress(DecodeError):
        decode_full_pki_request(data)
    with contextlib.suppress(DecodeError):
        decode_pki_response(data)


def test_identity_witness_depends_on_secret_and_requests() -> None:
    """RFC 5272 §6.2.1: witness = MAC(hash(secret), reqSequence)."""
    sequence = P.tlv(0x30, P.tcr(1, CSR))
    sha256, hmac256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
    witness = identity_witness(b"s3cret", sequence, sha256, hmac256)
    assert witness_matches(b"s3cret", sequence, sha256, hmac256, witness)
    assert not witness_matches(b"s3cret!", sequence, sha256, hmac256, witness)
    assert not witness_matches(b"s3cret", sequence + b"\x00", sha256, hmac256, witness)


def test_certificate_with_a_negative_serial_is_malformed() -> None:
    """Found by `python -m fuzz --target cmc`: `cryptography` parses a non-positive serial
    number (RFC 5280 §4.1.2.2) with a deprecation warning; the decoder refuses it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    name = x509.Name.from_rfc4514_string("CN=negative")
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(KEY.public_key()).serial_number(5)
                   .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
                   .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC)).sign(KEY, hashes.SHA256()))
    der = certificate.public_bytes(Encoding.DER)
    request = sign_full_pki_request(P.encode_pki_data([], [P.tcr(1, CSR)]), KEY, [certificate])
    # the serial INTEGER 5 (02 01 05) becomes -5 (02 01 fb): the outer signature no longer
    # matters, the certificate must not parse
    negative = request.replace(der, der.replace(b"\x02\x01\x05", b"\x02\x01\xfb", 1))
    with pytest.raises(DecodeError, match="serial"):
        decode_full_pki_request(negative)
