"""A Full PKI Request (RFC 5272 §3.2): ContentInfo(SignedData) whose encapsulated content
is a PKIData (eContentType id-cct-PKIData), as EST's /fullcmc (RFC 7030 §4.3.1) and the
CMC HTTP transport (RFC 5273 §4) carry it.

`decode_full_pki_request` is the server side; `sign_full_pki_request` the client side
(tests and tools): signed by a certificate's key (sid issuerAndSerialNumber), or by the
key being certified (sid subjectKeyIdentifier, RFC 5272 §3.2.1.3.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.wire.cmc.pki_data import ID_CCT_PKI_DATA, PKIData, decode_pki_data
from iotpki.wire.cmc.signed_data import SignedContent, decode_signed_data
from iotpki.wire.cmp.algorithms import signature_algorithm_oid
from iotpki.wire.cms_envelope import ID_SIGNED_DATA, SET, SHA256, algorithm_id, content_info, oid
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, tlv
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import signature_hash_for
from iotpki.wire.signature import sign_data

MAX_REQUEST = 256 * 1024  # octets of a Full PKI Request
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_TIME = "1.2.840.113549.1.9.5"


@dataclass(frozen=True)
class FullPKIRequest:
    signed: SignedContent
    data: PKIData


def decode_full_pki_request(der: bytes) -> FullPKIRequest:
    if len(der) > MAX_REQUEST:
        raise DecodeError(f"a Full PKI Request is at most {MAX_REQUEST} octets")
    signed = decode_signed_data(der)
    if signed.content_type != ID_CCT_PKI_DATA:
        raise DecodeError(f"RFC 5272 §3.2: the SignedData holds {signed.content_type}, "
                          f"not id-cct-PKIData")
    return FullPKIRequest(signed, decode_pki_data(signed.content))


def subject_key_id(public_key: Any) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value."""
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


def sign_full_pki_request(pki_data: bytes, key: Any,
                          certificates: Sequence[x509.Certificate] = (),
                          signing_time: datetime | None = None,
                          content_type: str = ID_CCT_PKI_DATA) -> bytes:
    """The client side: signed by `key`, whose certificate is `certificates[0]` if given
    (sid issuerAndSerialNumber), else identified by its subjectKeyIdentifier."""
    digest = hashlib.sha256(pki_data).digest()
    attributes = [tlv(SEQUENCE, oid(_CONTENT_TYPE) + tlv(SET, oid(content_type))),
                  tlv(SEQUENCE, oid(_MESSAGE_DIGEST) + tlv(SET, tlv(OCTET_STRING, digest)))]
    if signing_time is not None:
        attributes.append(tlv(SEQUENCE, oid(_SIGNING_TIME) + tlv(SET, tlv(
            0x18, signing_time.strftime("%Y%m%d%H%M%SZ").encode()))))
    signed_attributes = b"".join(sorted(attributes))
    signature = sign_data(key, tlv(SET, signed_attributes), signature_hash_for(key))
    if certificates:
        signer = certificates[0]
        serial = signer.serial_number
        sid = tlv(SEQUENCE, signer.issuer.public_bytes() + tlv(
            INTEGER, serial.to_bytes((serial.bit_length() + 8) // 8, "big")))
        version = b"\x01"
    else:
        sid, version = tlv(0x80, subject_key_id(key.public_key())), b"\x03"
    signer_info = tlv(SEQUENCE, tlv(INTEGER, version) + sid + algorithm_id(SHA256)
                      + tlv(0xA0, signed_attributes) + algorithm_id(signature_algorithm_oid(key))
                      + tlv(OCTET_STRING, signature))
    encapsulated = tlv(SEQUENCE, oid(content_type) + tlv(0xA0, tlv(OCTET_STRING, pki_data)))
    bag = (tlv(0xA0, b"".join(c.public_bytes(serialization.Encoding.DER) for c in certificates))
           if certificates else b"")
    return content_info(ID_SIGNED_DATA, tlv(SEQUENCE, tlv(INTEGER, b"\x03")
                                            + tlv(SET, algorithm_id(SHA256)) + encapsulated
                                            + bag + tlv(SET, signer_info)))
