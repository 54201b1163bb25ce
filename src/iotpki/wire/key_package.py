"""A server-generated private key as it is handed over (RFC 9483 §4.1.6, RFC 7030 §4.4.2):
an AsymmetricKeyPackage (RFC 5958 §2) holding the PKCS #8 key, in a SignedData (RFC 5652
§5) signed by the key-generation authority, in an EnvelopedData for the requester
(`iotpki.wire.cms_envelope`).

SignedData: version 3 (the content type is not id-data, §5.1), SHA-256 digest, signed
attributes contentType and messageDigest (§5.3, §11.1, §11.2), the signer identified by
issuerAndSerialNumber, the signer's certificate and its chain in `certificates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.wire.cmp.algorithms import signature_algorithm_oid
from iotpki.wire.cms_envelope import (
    ID_ENVELOPED_DATA,
    ID_SIGNED_DATA,
    SET,
    SHA256,
    Recipient,
    algorithm_id,
    content_info,
    encode_enveloped_data,
    oid,
)
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, tlv
from iotpki.wire.keys import signature_hash_for
from iotpki.wire.signature import sign_data

ID_CT_ASYMMETRIC_KEY_PACKAGE = "2.16.840.1.101.2.1.2.78.5"  # id-ct-KP-aKeyPackage
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


def encode_asymmetric_key_package(private_keys_pkcs8: Sequence[bytes]) -> bytes:
    """AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey; a v1
    OneAsymmetricKey is exactly PKCS #8 PrivateKeyInfo (RFC 5958 §2)."""
    return tlv(SEQUENCE, b"".join(private_keys_pkcs8))


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def encode_signed_data(content_type: str, content: bytes, key: Any,
                       certificates: Sequence[x509.Certificate]) -> bytes:
    """DER of SignedData over `content`, signed by `key` (`certificates[0]` is its own)."""
    signer = certificates[0]
    digest = hashes.Hash(hashes.SHA256())
    digest.update(content)
    attributes = b"".join(sorted((  # DER: SET OF in ascending order of the encodings
        tlv(SEQUENCE, oid(_CONTENT_TYPE) + tlv(SET, oid(content_type))),
        tlv(SEQUENCE, oid(_MESSAGE_DIGEST) + tlv(SET, tlv(OCTET_STRING, digest.finalize()))))))
    # RFC 5652 §5.4: the signature is over the DER of the attributes as a SET OF.
    signature = sign_data(key, tlv(SET, attributes), signature_hash_for(key))
    signer_info = tlv(SEQUENCE, tlv(INTEGER, b"\x01")
                      + tlv(SEQUENCE, signer.issuer.public_bytes()
                            + _serial(signer.serial_number))
                      + algorithm_id(SHA256) + tlv(0xA0, attributes)
                      + algorithm_id(signature_algorithm_oid(key))
                      + tlv(OCTET_STRING, signature))
    encapsulated = tlv(SEQUENCE, oid(content_type) + tlv(0xA0, tlv(OCTET_STRING, content)))
    return tlv(SEQUENCE, tlv(INTEGER, b"\x03") + tlv(SET, algorithm_id(SHA256)) + encapsulated
               + tlv(0xA0, b"".join(_der(c) for c in certificates)) + tlv(SET, signer_info))


def _serial(serial: int) -> bytes:
    return tlv(INTEGER, serial.to_bytes((serial.bit_length() + 8) // 8 or 1, "big"))


def encode_key_delivery(private_key_pkcs8: bytes, signer_key: Any,
                        signer_certificates: Sequence[x509.Certificate],
                        recipient: Recipient) -> bytes:
    """EnvelopedData(SignedData(AsymmetricKeyPackage)) for `recipient` (RFC 9483 §4.1.6)."""
    package = encode_asymmetric_key_package([private_key_pkcs8])
    signed = encode_signed_data(ID_CT_ASYMMETRIC_KEY_PACKAGE, package, signer_key,
                                signer_certificates)
    return encode_enveloped_data(ID_SIGNED_DATA, signed, recipient)


def enveloped_content_info(enveloped_data: bytes) -> bytes:
    """The EnvelopedData as a ContentInfo (an S/MIME body, `openssl cms -inform DER`)."""
    return content_info(ID_ENVELOPED_DATA, enveloped_data)
