"""The PKIHeader read with the DER walker (`wire.cmp.header_der`) against pyasn1 with the
RFC 9810 module: every header it reads gives the fields pyasn1 gives; every other header is
left to pyasn1 (read or refused as before), never refused by the walker itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, univ
from pyasn1_alt_modules import rfc5280, rfc9480

from iotpki.wire.cmp.header_der import NotReadError, read_header_fields
from iotpki.wire.cmp.messages import _decode_exactly, _decode_header, _header, split_message
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.der import SEQUENCE, read_tlv, tlv
from iotpki.wire.keys import generate_private_key

NOW = datetime(2026, 12, 6, 11, 0, 5, tzinfo=UTC)
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OperatorCo")])


def _request_header() -> bytes:
    key = generate_private_key("ec-p256")
    cert = (x509.CertificateBuilder().subject_name(NAME).issuer_name(NAME)
            .public_key(key.public_key()).serial_number(7).not_valid_before(NOW)
            .not_valid_after(NOW + timedelta(days=1)).sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    der = encode_signed_request("cr", encode_cert_req_msg(generate_private_key("ec-p256"), NAME),
                                key, (cert,), NOW)
    return split_message(der)[0]


def _outcome(read: object) -> object:
    """The Header `read()` returns, or the class of what it raises."""
    try:
        return read()  # type: ignore[operator]
    except Exception as exc:
        return type(exc)


def _pyasn1(der: bytes) -> object:
    """What pyasn1 makes of a header: the Header, or the refusal's class."""
    return _outcome(lambda: _header(_decode_exactly(der, rfc9480.PKIHeader())))


def _walker(der: bytes) -> object:
    """The Header as `decode_pki_message` makes it when the walker reads it."""
    try:
        read_header_fields(der)
    except NotReadError:
        return NotReadError
    return _decode_header(der)


def _edited(edit: object) -> bytes:
    header, _ = decoder.decode(_request_header(), asn1Spec=rfc9480.PKIHeader())
    edit(header)  # type: ignore[operator]
    return bytes(encoder.encode(header))


def _directory_name(*rdns: list[tuple[univ.ObjectIdentifier, bytes]]) -> rfc5280.GeneralName:
    sequence = rfc5280.RDNSequence()
    for index, attributes in enumerate(rdns):
        rdn = rfc5280.RelativeDistinguishedName()
        for position, (oid, value) in enumerate(attributes):
            pair = rfc5280.AttributeTypeAndValue()
            pair["type"], pair["value"] = oid, value
            rdn[position] = pair
        sequence[index] = rdn
    name = rfc5280.GeneralName()
    name["directoryName"]["rdnSequence"] = sequence
    return name


CN, ORG = univ.ObjectIdentifier("2.5.4.3"), univ.ObjectIdentifier("2.5.4.10")
UTF8 = bytes(encoder.encode(char.UTF8String("x")))


def _set_sender(name: rfc5280.GeneralName) -> object:
    return lambda header: header.setComponentByName("sender", name)


def _free_text(header: object) -> None:
    header["freeText"].extend([char.UTF8String("hello")])  # type: ignore[index]


def _email_sender(header: object) -> None:
    name = rfc5280.GeneralName()
    name["rfc822Name"] = "a@example.com"
    header["sender"] = name  # type: ignore[index]


def _time(text: str) -> object:
    return lambda header: header.setComponentByName("messageTime",
                                                    header["messageTime"].clone(text))


READ = {
    "our client's request": lambda h: None,
    "NULL-DN sender": _set_sender(_directory_name()),
    "one attribute": _set_sender(_directory_name([(CN, UTF8)])),
    "an OID with a large arc": _set_sender(_directory_name(
        [(univ.ObjectIdentifier("2.999.1234567890123"), UTF8)])),
}
LEFT_TO_PYASN1 = {
    "freeText": _free_text,
    "an rfc822Name sender": _email_sender,
    "a multi-valued RDN": _set_sender(_directory_name([(ORG, UTF8), (CN, UTF8)])),
    "a time with a fraction": _time("20261206110005.25Z"),
    "a time without seconds": _time("202612061100Z"),
    "February 30": _time("20260230110005Z"),
}


@pytest.mark.parametrize("case", sorted(READ))
def test_the_walker_reads_the_common_headers_as_pyasn1_does(case: str) -> None:
    der = _edited(READ[case])
    expected = _pyasn1(der)
    assert not isinstance(expected, type)
    assert _walker(der) == expected


@pytest.mark.parametrize("case", sorted(LEFT_TO_PYASN1))
def test_other_headers_are_left_to_pyasn1(case: str) -> None:
    der = _edited(LEFT_TO_PYASN1[case])
    assert _walker(der) is NotReadError
    assert _outcome(lambda: _decode_header(der)) == _pyasn1(der)


def test_no_truncation_or_byte_flip_is_read_otherwise_than_by_pyasn1() -> None:
    """Every truncation and every single-byte change of a request header: the walker leaves
    it to pyasn1 or reads what pyasn1 reads (the same Header, or pyasn1's refusal)."""
    der = _request_header()
    variants = [der[:cut] for cut in range(len(der))]
    variants += [der[:i] + bytes((value,)) + der[i + 1:]
                 for i in range(len(der)) for value in (0x00, 0x80, der[i] ^ 0x01, 0xFF)]
    read = 0
    for variant in variants:
        walked = _walker(variant)
        if walked is NotReadError:
            continue
        read += 1
        assert walked == _pyasn1(variant), variant.hex()
    assert read > len(der)  # many changes keep the common shape (nonces, ids, time digits)


def test_a_non_minimal_length_in_the_sender_is_left_to_pyasn1() -> None:
    der = _request_header()
    header, _ = decoder.decode(der, asn1Spec=rfc9480.PKIHeader())
    sender = bytes(encoder.encode(header["sender"]))
    assert sender[1] < 0x80
    long_form = sender[:1] + bytes((0x81, sender[1])) + sender[2:]
    _, start, _ = read_tlv(der, 0)
    changed = tlv(SEQUENCE, der[start:].replace(sender, long_form))
    assert _walker(changed) is NotReadError
    assert _outcome(lambda: _decode_header(changed)) == _pyasn1(changed)
