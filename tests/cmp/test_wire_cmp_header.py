"""The answer header written with the DER helpers (`wire.cmp.responses`) read back by
pyasn1 with the RFC 9810 module: canonical DER, and the RFC 9483 §3.1 fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc9480

from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.protection import MACProtection, PBMParameters, SignatureProtection
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.cmp.responses import Protection, encode_response, pkiconf_body
from iotpki.wire.der import tlv
from iotpki.wire.keys import generate_private_key

NOW = datetime(2026, 11, 27, 12, 0, 5, tzinfo=UTC)
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CMP operatorco"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OperatorCo")])


def _certificate() -> tuple[object, x509.Certificate]:
    key = generate_private_key("ec-p256")
    cert = (x509.CertificateBuilder().subject_name(NAME).issuer_name(NAME)
            .public_key(key.public_key()).serial_number(9).not_valid_before(NOW)
            .not_valid_after(NOW + timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    return key, cert


def _protections() -> dict[str, Protection | None]:
    key, cert = _certificate()
    mac = MACProtection(b"secret", PBMParameters(b"salt-salt-salt16", "2.16.840.1.101.3.4.2.1",
                                                 1000, "1.2.840.113549.2.9"))
    return {"none": None, "mac": mac, "signature": SignatureProtection(key, cert, (cert,))}


@pytest.mark.parametrize("protection_kind", ["none", "mac", "signature"])
@pytest.mark.parametrize("with_request", [False, True])
@pytest.mark.parametrize("implicit", [False, True])
def test_answer_header_is_canonical_der_with_the_profiled_fields(
        protection_kind: str, with_request: bool, implicit: bool) -> None:
    protection = _protections()[protection_kind]
    key, cert = _certificate()
    request = decode_pki_message(encode_signed_request(
        "cr", encode_cert_req_msg(generate_private_key("ec-p256"), NAME), key, (cert,),
        NOW)).header if with_request else None
    der = encode_response(request, pkiconf_body(), protection, NOW, b"n" * 16, implicit)

    message, rest = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    assert rest == b""
    header = message["header"]
    assert der.find(bytes(encoder.encode(header))) in (2, 3, 4)  # re-encodes to the same DER
    assert int(header["pvno"]) == 2
    sender = encoder.encode(header["sender"])  # GeneralName directoryName: [4] EXPLICIT Name
    assert sender == tlv(0xA4, protection.sender.public_bytes() if protection is not None
                         and protection.sender is not None else b"\x30\x00")
    recipient = encoder.encode(header["recipient"])
    assert recipient == tlv(0xA4, NAME.public_bytes() if with_request else b"\x30\x00")
    assert str(header["messageTime"]) == "20261127120005Z"
    assert bytes(header["senderNonce"]) == b"n" * 16
    if request is not None:
        assert bytes(header["transactionID"]) == request.transaction_id
        assert bytes(header["recipNonce"]) == request.sender_nonce
    else:
        assert len(bytes(header["transactionID"])) == 16 and not header["recipNonce"].isValue
    if protection is not None:
        oid, parameters = protection.algorithm()
        assert str(header["protectionAlg"]["algorithm"]) == oid
        assert (bytes(header["protectionAlg"]["parameters"])
                if header["protectionAlg"]["parameters"].isValue else None) == parameters
        kid = protection.sender_kid
        assert (bytes(header["senderKID"]) if header["senderKID"].isValue else None) == kid
    infos = [str(i["infoType"]) for i in header["generalInfo"]]
    assert infos == ([str(rfc9480.id_it_implicitConfirm)] if implicit else [])
