"""The CertReqMsg read with the DER walker (`wire.cmp.crmf_der`) against pyasn1 with the
RFC 4211 module: every CertReqMsg it reads gives the fields pyasn1 gives; every other one is
left to pyasn1 (read or refused as before), never refused by the walker itself. Requests
come from the project's encoders, from tests/cmp/rfc9483.py's field-by-field writer, and
from `openssl cmp` (tests/cmp/vectors/openssl-crmf)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg
from iotpki.wire.cmp.crmf import CRMFRequest, _pyasn1_fields
from iotpki.wire.cmp.crmf_der import NotReadError, read_cert_req_msg
from iotpki.wire.cmp.messages import _inner, decode_pki_message, split_message
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.der import OCTET_STRING, SEQUENCE, children, read_tlv, tlv
from iotpki.wire.der import object_identifier as oid
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import generate_private_key
from tests.cmp.rfc9483 import crmf, extension, now, old_cert_id

VECTORS = Path(__file__).parent / "vectors" / "openssl-crmf"
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OperatorCo")])
EC_KEY = generate_private_key("ec-p256")
SPKI = EC_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
SAN = extension("2.5.29.17", tlv(SEQUENCE, tlv(0x82, b"a.example")))
KEY_USAGE = extension("2.5.29.15", bytes.fromhex("03020780"), critical=True)


def _outcome(read: Callable[[], object]) -> object:
    """What `read()` returns, or the class of what it raises."""
    try:
        return read()
    except Exception as exc:
        return type(exc)


def _walker(der: bytes) -> object:
    return _outcome(lambda: read_cert_req_msg(der))


def _pyasn1(der: bytes) -> object:
    return _outcome(lambda: _pyasn1_fields(der))


def _single(messages: bytes) -> bytes:
    """The one CertReqMsg of a CertReqMessages."""
    _, start, end = read_tlv(messages, 0)
    (_, first, last), = children(messages, start, end)
    return messages[first:last]


def _openssl(name: str) -> bytes:
    _, body, _, _ = split_message((VECTORS / f"{name}.der").read_bytes())
    return _single(_inner(body))


def _certificate() -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(NAME).issuer_name(NAME)
            .public_key(EC_KEY.public_key()).serial_number(4711).not_valid_before(now())
            .not_valid_after(now()).sign(EC_KEY, hashes.SHA256()))


def _elements(der: bytes) -> list[bytes]:
    _, start, end = read_tlv(der, 0)
    return [der[first:last] for _, first, last in children(der, start, end)]


def _edited(der: bytes, edit: Callable[[list[bytes]], None]) -> bytes:
    """The CertReqMsg with certReq's elements (certReqId, certTemplate, ...) edited; the
    POP signature no longer matches, which neither reader checks."""
    cert_req, *rest = _elements(der)
    elements = _elements(cert_req)
    edit(elements)
    return tlv(SEQUENCE, tlv(SEQUENCE, b"".join(elements)) + b"".join(rest))


def _version_first(elements: list[bytes]) -> None:
    """certTemplate version [0] v3 in front of its fields."""
    elements[1] = tlv(SEQUENCE, bytes.fromhex("800102") + b"".join(_elements(elements[1])))


def _non_minimal_id(elements: list[bytes]) -> None:
    elements[0] = bytes.fromhex("02020005")


def _long_form_id(elements: list[bytes]) -> None:
    """certReqId 0 with its length in the long form (BER, which pyasn1 reads as well)."""
    elements[0] = bytes.fromhex("02810100")


READ: dict[str, Callable[[], bytes]] = {
    "encoder, P-256": lambda: encode_cert_req_msg(EC_KEY, NAME),
    "encoder, RSA": lambda: encode_cert_req_msg(generate_private_key("rsa-2048"), NAME, 3),
    "encoder, Ed25519": lambda: encode_cert_req_msg(generate_private_key("ed25519"), NAME),
    "keygen without a key": lambda: encode_keygen_cert_req_msg(NAME),
    "keygen with an algorithm": lambda: encode_keygen_cert_req_msg(
        NAME, tlv(SEQUENCE, oid("1.2.840.10045.2.1") + oid("1.2.840.10045.3.1.7"))),
    "extensions": lambda: _single(crmf(EC_KEY, extensions=SAN + KEY_USAGE)),
    "oldCertId control": lambda: _single(crmf(EC_KEY, controls=old_cert_id(_certificate()))),
    "two controls": lambda: _single(crmf(EC_KEY, controls=tlv(
        SEQUENCE, oid("1.3.6.1.5.5.7.5.1.1") + tlv(0x0C, b"token"))
        + old_cert_id(_certificate()))),
    "raVerified": lambda: _single(crmf(EC_KEY, popo=b"\x80\x00")),
    "a negative certReqId": lambda: _single(crmf(EC_KEY, cert_req_id=0xFF)),
    "an empty subject": lambda: _single(crmf(EC_KEY, subject="")),
    "a multi-valued RDN": lambda: encode_cert_req_msg(EC_KEY, x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7"),
                                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "O")])])),
    "a long-form length": lambda: _edited(encode_cert_req_msg(EC_KEY, NAME), _long_form_id),
    "openssl cr": lambda: _openssl("cr_ec"),
    "openssl cr, SANs": lambda: _openssl("cr_sans"),
    "openssl cr, critical extensions": lambda: _openssl("cr_critical_policies"),
    "openssl ir, raVerified": lambda: _openssl("ir_raverified"),
    "openssl ir, no POP": lambda: _openssl("ir_no_pop"),
    "openssl ir, RSA": lambda: _openssl("ir_rsa"),
    "openssl ir, Ed25519": lambda: _openssl("ir_ed25519"),
    "openssl kur, issuer and oldCertId": lambda: _openssl("kur_oldcert"),
}
LEFT_TO_PYASN1: dict[str, Callable[[], bytes]] = {
    "openssl cr with a validity": lambda: _openssl("cr_days"),
    "a version in the template": lambda: _edited(encode_cert_req_msg(EC_KEY, NAME),
                                                 _version_first),
    "critical FALSE encoded": lambda: _single(crmf(EC_KEY, extensions=tlv(
        SEQUENCE, oid("2.5.29.15") + b"\x01\x01\x00" + tlv(OCTET_STRING, b"\x03\x02\x07\x80")))),
    "keyEncipherment POP": lambda: _single(crmf(EC_KEY, popo=tlv(0xA2, b"\x80\x01\x00"))),
    "poposkInput": lambda: _single(crmf(EC_KEY, popo=tlv(0xA1, tlv(  # RFC 4211 §4.1
        0xA0, tlv(0xA0, tlv(0xA4, NAME.public_bytes())) + SPKI) + tlv(SEQUENCE, oid(
            "1.2.840.10045.4.3.2")) + b"\x03\x01\x00"))),
    "a non-minimal certReqId": lambda: _edited(encode_cert_req_msg(EC_KEY, NAME),
                                               _non_minimal_id),
}


@pytest.mark.parametrize("case", sorted(READ))
def test_the_walker_reads_the_common_requests_as_pyasn1_does(case: str) -> None:
    der = READ[case]()
    expected = _pyasn1(der)
    assert not isinstance(expected, type), expected
    assert _walker(der) == expected


@pytest.mark.parametrize("case", sorted(LEFT_TO_PYASN1))
def test_other_requests_are_left_to_pyasn1(case: str) -> None:
    der = LEFT_TO_PYASN1[case]()
    assert _walker(der) is NotReadError
    assert not isinstance(_pyasn1(der), type)  # and pyasn1 reads them


def _variants(der: bytes) -> list[bytes]:
    """Every truncation and four single-byte changes at every position."""
    variants = [der[:cut] for cut in range(len(der))]
    return variants + [der[:i] + bytes((value,)) + der[i + 1:]
                       for i in range(len(der)) for value in (0x00, 0x80, der[i] ^ 0x01, 0xFF)]


@pytest.mark.parametrize("case", ["encoder, P-256", "extensions", "oldCertId control",
                                  "keygen with an algorithm", "openssl cr, SANs",
                                  "openssl kur, issuer and oldCertId"])
def test_no_truncation_or_byte_change_is_read_otherwise_than_by_pyasn1(case: str) -> None:
    """The walker leaves each variant to pyasn1 or reads what pyasn1 reads; a
    `CRMFRequest` of it is made or refused with `DecodeError`, nothing else."""
    der = READ[case]()
    read = 0
    for variant in _variants(der):
        walked = _walker(variant)
        if walked is not NotReadError:
            read += 1
            assert walked == _pyasn1(variant), variant.hex()
        outcome = _outcome(lambda v=variant: CRMFRequest(v))  # type: ignore[misc]
        assert isinstance(outcome, CRMFRequest) or outcome is DecodeError, variant.hex()
    assert read > len(der)  # many changes keep the shape (key, signature, name bytes)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(READ)), st.lists(st.tuples(st.integers(0, 2000),
                                                         st.integers(0, 255)),
                                               min_size=1, max_size=4))
def test_several_byte_changes_are_read_as_pyasn1_reads_them(
        case: str, changes: list[tuple[int, int]]) -> None:
    variant = bytearray(READ[case]())
    for position, value in changes:
        variant[position % len(variant)] = value
    walked = _walker(bytes(variant))
    if walked is not NotReadError:
        assert walked == _pyasn1(bytes(variant))
    outcome = _outcome(lambda: CRMFRequest(bytes(variant)))
    assert isinstance(outcome, CRMFRequest) or outcome is DecodeError


def test_a_cr_reads_the_same_through_the_message_and_alone() -> None:
    """decode_pki_message skips the second tree walk over its CertReqMsg; a direct caller
    (CMC) runs it: both make the same request."""
    key = generate_private_key("ec-p256")
    message = encode_signed_request("cr", encode_cert_req_msg(key, NAME), EC_KEY,
                                    (_certificate(),), now())
    through = decode_pki_message(message).body.requests[0]  # type: ignore[union-attr]
    alone = CRMFRequest(through.der)
    assert (through.cert_req_id, through.pop_kind, through.subject, through.is_signature_valid,
            through.old_cert_id) == (alone.cert_req_id, alone.pop_kind, alone.subject,
                                     alone.is_signature_valid, alone.old_cert_id)
    assert through.is_signature_valid


def test_a_tree_too_deep_is_refused_alone_and_in_a_message() -> None:
    """A subject attribute value nested beyond the tree check's depth: the walker's own
    checks do not look at depth, so the check must still run before it for a direct
    caller, as it runs over the whole message in decode_pki_message."""
    deep = b"\x05\x00"
    for _ in range(40):
        deep = tlv(SEQUENCE, deep)
    subject = tlv(SEQUENCE, tlv(0x31, tlv(SEQUENCE, oid("2.5.4.3") + deep)))
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + bytes(65)
    template = tlv(SEQUENCE, tlv(0xA5, subject) + bytes((0xA6,)) + spki[1:])
    der = tlv(SEQUENCE, tlv(SEQUENCE, bytes.fromhex("020100") + template))
    with pytest.raises(DecodeError, match="nested too deeply"):
        CRMFRequest(der)
    message = encode_signed_request("cr", der, EC_KEY, (_certificate(),), now())
    with pytest.raises(DecodeError, match="nested too deeply"):
        decode_pki_message(message)


def test_the_fallback_keeps_what_only_pyasn1_reads() -> None:
    """A template with a version and an oldCertId control is read by pyasn1 alone, control
    included; openssl's cr with a validity keeps its valid POP; a central keygen template
    still offers the pyasn1 template for the key algorithm."""
    certificate = _certificate()
    versioned = _edited(_single(crmf(EC_KEY, controls=old_cert_id(certificate))),
                        _version_first)
    assert _walker(versioned) is NotReadError
    old = CRMFRequest(versioned).old_cert_id
    assert old == (tlv(0xA4, certificate.issuer.public_bytes()), 4711)
    assert CRMFRequest(_openssl("cr_days")).is_signature_valid
    keygen = CRMFRequest(READ["keygen with an algorithm"]())
    assert keygen.central_keygen and _walker(keygen.der) is not NotReadError
    assert str(keygen.template["publicKey"]["algorithm"]["algorithm"]) == "1.2.840.10045.2.1"
    kur = CRMFRequest(_openssl("kur_oldcert"))  # read by the walker, the control by pyasn1
    assert kur.old_cert_id is not None and kur.is_signature_valid
