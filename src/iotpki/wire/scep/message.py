"""The SCEP pkiMessage (RFC 8894 §3.2): a CMS SignedData (RFC 5652 §5) whose
encapsulated id-data content is the pkcsPKIEnvelope (absent in a CertRep FAILURE or
PENDING, §3.3.2), signed with authenticated attributes carrying the SCEP transaction
attributes (§3.2.1) next to contentType and messageDigest (RFC 5652 §11).

`decode_pki_message` parses what can be parsed without trusting it: a message without a
transactionID, messageType or senderNonce cannot be answered with a CertRep (there is
nothing to echo), so it raises `DecodeError`. `verify_pki_message` then checks the digest
and the signature (badAlg, badMessageCheck as `SCEPFailure`): a CertRep FAILURE can be
formed for those. `encode_pki_message` builds one (a CertRep on the server, a request on
the client side).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, univ
from pyasn1_alt_modules import rfc5652

from iotpki.wire.cms_envelope import algorithm_id, content_info, oid
from iotpki.wire.decoding import decoding
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, UTC_TIME, tlv
from iotpki.wire.errors import DecodeError
from iotpki.wire.scep.attributes import (
    FAIL_INFO,
    FAIL_INFO_TEXT,
    MESSAGE_TYPE,
    PKI_STATUS,
    RECIPIENT_NONCE,
    SENDER_NONCE,
    TRANSACTION_ID,
    FailInfo,
    PKIStatus,
)
from iotpki.wire.scep.failure import SCEPFailure
from iotpki.wire.signature import sign_data

__all__ = ["DIGESTS", "PKIMessage", "decode_pki_message", "encode_pki_message",
           "verify_pki_message"]

SET = 0x31
PRINTABLE_STRING = 0x13
UTF8_STRING = 0x0C
ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
CONTENT_TYPE = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
SIGNING_TIME = "1.2.840.113549.1.9.5"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
SHA1 = "1.3.14.3.2.26"
# §3.5.2: SHA-256 and SHA-512 are the capabilities advertised; SHA-1 only for legacy clients.
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512, SHA1: hashes.SHA1}
_DIGEST_OIDS = {"sha256": "2.16.840.1.101.3.4.2.1", "sha384": "2.16.840.1.101.3.4.2.2",
                "sha512": "2.16.840.1.101.3.4.2.3", "sha1": SHA1}
# Signature OIDs a SignerInfo may carry for RSA and ECDSA (RFC 5754 §3).
_SIGNATURES = {RSA_ENCRYPTION: "rsa", "1.2.840.113549.1.1.5": "rsa",
               "1.2.840.113549.1.1.11": "rsa", "1.2.840.113549.1.1.12": "rsa",
               "1.2.840.113549.1.1.13": "rsa", "1.2.840.10045.4.1": "ecdsa",
               "1.2.840.10045.4.3.2": "ecdsa", "1.2.840.10045.4.3.3": "ecdsa",
               "1.2.840.10045.4.3.4": "ecdsa"}
_ECDSA_OIDS = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3",
               "sha512": "1.2.840.10045.4.3.4"}


@dataclass(frozen=True)
class PKIMessage:
    """A decoded pkiMessage; nothing in it is trusted before `verify_pki_message`."""

    message_type: int  # §3.2.1.2 (`MessageType` when known)
    transaction_id: str  # §3.2.1.1
    sender_nonce: bytes
    recipient_nonce: bytes | None
    pki_status: PKIStatus | None  # CertRep only
    fail_info: FailInfo | None
    signer: x509.Certificate | None  # the certificate the SignerInfo names, if carried
    certificates: tuple[x509.Certificate, ...]
    content: bytes | None  # the pkcsPKIEnvelope, DER ContentInfo (None: absent or empty)
    digest_algorithm: str  # OID
    signature_algorithm: str
    signed_attributes: bytes  # DER of the SET OF the signature covers
    message_digest: bytes | None
    signature: bytes


def decode_pki_message(data: bytes) -> PKIMessage:
    """Raise `DecodeError` for anything that is not a SCEP pkiMessage. A carried certificate
    with a non-positive serial number (RFC 5280 §4.1.2.2), which `cryptography` parses with a
    deprecation warning and will refuse, is refused now."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        try:
            return _decode_pki_message(data)
        except CryptographyDeprecationWarning as exc:
            raise DecodeError(f"malformed SCEP pkiMessage: {exc}") from exc


def _decode_pki_message(data: bytes) -> PKIMessage:
    with decoding("SCEP pkiMessage"):
        info, rest = ber_decoder.decode(data, asn1Spec=rfc5652.ContentInfo())
        if rest:
            raise ValueError("trailing bytes after the ContentInfo")
        if str(info["contentType"]) != ID_SIGNED_DATA:
            raise ValueError("not a CMS SignedData")
        signed, _ = ber_decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.SignedData())
        certificates = tuple(
            _loaded(x509.load_der_x509_certificate(der_encoder.encode(choice["certificate"])))
            for choice in signed["certificates"] if choice.getName() == "certificate")
        if len(signed["signerInfos"]) != 1:
            raise ValueError(f"a pkiMessage has one signer, not {len(signed['signerInfos'])}")
        signer_info = signed["signerInfos"][0]
        attributes = _attributes(signer_info["signedAttrs"])
        encapsulated = signed["encapContentInfo"]
        content = (bytes(encapsulated["eContent"]) or None if encapsulated["eContent"].isValue
                   else None)
        return PKIMessage(
            message_type=int(_string(attributes, MESSAGE_TYPE, required=True) or "0"),
            transaction_id=_string(attributes, TRANSACTION_ID, required=True) or "",
            sender_nonce=_octets(attributes, SENDER_NONCE) or b"",
            recipient_nonce=_octets(attributes, RECIPIENT_NONCE),
            pki_status=_status(_string(attributes, PKI_STATUS)),
            fail_info=_fail_info(_string(attributes, FAIL_INFO)),
            signer=_signer(signer_info["sid"], certificates),
            certificates=certificates,
            content=content,
            digest_algorithm=str(signer_info["digestAlgorithm"]["algorithm"]),
            signature_algorithm=str(signer_info["signatureAlgorithm"]["algorithm"]),
            # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF.
            signed_attributes=b"\x31" + der_encoder.encode(signer_info["signedAttrs"])[1:],
            message_digest=_octets(attributes, MESSAGE_DIGEST),
            signature=bytes(signer_info["signature"]))


def _loaded(certificate: x509.Certificate) -> x509.Certificate:
    """`certificate` with the names `cryptography` parses lazily parsed now (inside
    `decoding`): a malformed name is a malformed message, not a fault later."""
    certificate.subject.rfc4514_string()
    certificate.issuer.rfc4514_string()
    certificate.serial_number  # noqa: B018 (warns for a non-positive one)
    return certificate


def _attributes(signed_attrs: Any) -> dict[str, bytes]:
    if not signed_attrs.isValue:
        raise ValueError("a pkiMessage carries authenticated attributes (RFC 8894 §3.2.1)")
    found: dict[str, bytes] = {}
    for attribute in signed_attrs:
        name = str(attribute["attrType"])
        if name in found or len(attribute["attrValues"]) != 1:
            raise ValueError(f"attribute {name} must occur once with one value")
        found[name] = bytes(attribute["attrValues"][0])
    for name in (MESSAGE_TYPE, TRANSACTION_ID, SENDER_NONCE):
        if name not in found:
            raise ValueError(f"the {_NAMES[name]} attribute is missing (RFC 8894 §3.2.1)")
    return found


_NAMES = {MESSAGE_TYPE: "messageType", TRANSACTION_ID: "transactionID",
          SENDER_NONCE: "senderNonce"}


def _string(attributes: dict[str, bytes], name: str, required: bool = False) -> str | None:
    value = attributes.get(name)
    if value is None:
        return None
    decoded, _ = ber_decoder.decode(value)
    if not isinstance(decoded, char.AbstractCharacterString) or len(str(decoded)) > 256:
        raise ValueError(f"attribute {name} is not a short string")
    return str(decoded)


def _octets(attributes: dict[str, bytes], name: str) -> bytes | None:
    value = attributes.get(name)
    if value is None:
        return None
    decoded, _ = ber_decoder.decode(value, asn1Spec=univ.OctetString())
    return bytes(decoded)


def _status(text: str | None) -> PKIStatus | None:
    return None if text is None else PKIStatus(text)


def _fail_info(text: str | None) -> FailInfo | None:
    return None if text is None else FailInfo(text)


def _signer(sid: Any, certificates: tuple[x509.Certificate, ...]) -> x509.Certificate | None:
    if sid.getName() == "issuerAndSerialNumber":
        issuer = der_encoder.encode(sid["issuerAndSerialNumber"]["issuer"])
        serial = int(sid["issuerAndSerialNumber"]["serialNumber"])
        return next((c for c in certificates if c.serial_number == serial
                     and c.issuer.public_bytes() == issuer), None)
    key_id = bytes(sid["subjectKeyIdentifier"])
    for certificate in certificates:
        try:
            ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            continue
        if ski.value.digest == key_id:
            return certificate
    return None


def verify_pki_message(message: PKIMessage, allow_sha1: bool = False) -> None:
    """Raise `SCEPFailure` unless the message is signed by the certificate it carries."""
    hash_class = DIGESTS.get(message.digest_algorithm)
    if hash_class is None or (hash_class is hashes.SHA1 and not allow_sha1):
        raise SCEPFailure(FailInfo.BAD_ALG, f"digest {message.digest_algorithm} is not "
                                            f"supported (SHA-256, SHA-512)")
    if message.signer is None:
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "the signer's certificate is not in the "
                                                      "message (RFC 8894 §3.2)")
    digest = hashes.Hash(hash_class())
    digest.update(message.content or b"")
    if message.message_digest != digest.finalize():
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "the content does not match its "
                                                      "messageDigest")
    kind = _SIGNATURES.get(message.signature_algorithm)
    with decoding("signer certificate"):
        key: Any = message.signer.public_key()
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(message.signature, message.signed_attributes, padding.PKCS1v15(),
                       hash_class())
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(message.signature, message.signed_attributes, ec.ECDSA(hash_class()))
        else:
            raise SCEPFailure(FailInfo.BAD_ALG, f"signature {message.signature_algorithm} with "
                                                f"a {type(key).__name__} is not supported")
    except InvalidSignature as exc:
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "the signature does not verify") from exc


# -- encoding -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attributes:
    """The SCEP attributes of a message to sign."""

    message_type: int
    transaction_id: str
    sender_nonce: bytes
    recipient_nonce: bytes | None = None
    pki_status: PKIStatus | None = None
    fail_info: FailInfo | None = None
    fail_info_text: str | None = None


def _attribute(name: str, value: bytes) -> bytes:
    return tlv(SEQUENCE, oid(name) + tlv(SET, value))


def _printable(text: str) -> bytes:
    printable = all(c.isalnum() or c in " '()+,-./:=?" for c in text)
    return tlv(PRINTABLE_STRING if printable else UTF8_STRING, text.encode())


def _encoded_attributes(attributes: Attributes, digest: bytes, at: datetime) -> bytes:
    values = [
        _attribute(CONTENT_TYPE, oid(ID_DATA)),
        _attribute(MESSAGE_DIGEST, tlv(OCTET_STRING, digest)),
        _attribute(SIGNING_TIME, tlv(UTC_TIME, at.strftime("%y%m%d%H%M%SZ").encode())),
        _attribute(MESSAGE_TYPE, _printable(str(attributes.message_type))),
        _attribute(TRANSACTION_ID, _printable(attributes.transaction_id)),
        _attribute(SENDER_NONCE, tlv(OCTET_STRING, attributes.sender_nonce))]
    if attributes.recipient_nonce is not None:
        values.append(_attribute(RECIPIENT_NONCE, tlv(OCTET_STRING, attributes.recipient_nonce)))
    if attributes.pki_status is not None:
        values.append(_attribute(PKI_STATUS, _printable(attributes.pki_status.value)))
    if attributes.fail_info is not None:
        values.append(_attribute(FAIL_INFO, _printable(attributes.fail_info.value)))
    if attributes.fail_info_text:
        values.append(_attribute(FAIL_INFO_TEXT, tlv(UTF8_STRING,
                                                     attributes.fail_info_text[:200].encode())))
    return b"".join(sorted(values))  # DER: a SET OF in ascending order of the encodings


def _integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True))


def encode_pki_message(attributes: Attributes, content: bytes | None, key: Any,
                       signer: x509.Certificate, certificates: Sequence[x509.Certificate],
                       at: datetime, digest_algorithm: hashes.HashAlgorithm | None = None,
                       ) -> bytes:
    """ContentInfo(SignedData) over `content` (the pkcsPKIEnvelope, or None), signed by
    `key` (RSA or EC) whose certificate is `signer`; `certificates` are carried (the signer's
    first)."""
    hash_algorithm = digest_algorithm or hashes.SHA256()
    digest = hashes.Hash(hash_algorithm)
    digest.update(content or b"")
    signed_attributes = _encoded_attributes(attributes, digest.finalize(), at)
    signature = sign_data(key, tlv(SET, signed_attributes), hash_algorithm)
    digest_id = algorithm_id(_DIGEST_OIDS[hash_algorithm.name])
    if isinstance(key, rsa.RSAPrivateKey):
        signature_id = algorithm_id(RSA_ENCRYPTION, b"\x05\x00")
    else:
        signature_id = algorithm_id(_ECDSA_OIDS[hash_algorithm.name])
    signer_info = tlv(SEQUENCE, _integer(1)
                      + tlv(SEQUENCE, signer.issuer.public_bytes() + _integer(signer.serial_number))
                      + digest_id + tlv(0xA0, signed_attributes) + signature_id
                      + tlv(OCTET_STRING, signature))
    # Without a pkcsPKIEnvelope (FAILURE, PENDING) the eContent is empty rather than absent:
    # OpenSSL-based clients (certmonger) take an absent one for a detached signature.
    encapsulated = tlv(SEQUENCE, oid(ID_DATA) + tlv(0xA0, tlv(OCTET_STRING, content or b"")))
    carried = b"".join(sorted(c.public_bytes(serialization.Encoding.DER) for c in certificates))
    return content_info(ID_SIGNED_DATA, tlv(SEQUENCE, _integer(1) + tlv(SET, digest_id)
                                             + encapsulated + tlv(0xA0, carried)
                                             + tlv(SET, signer_info)))


def encode_degenerate(certificates: Sequence[x509.Certificate],
                      crls: Sequence[bytes] = ()) -> bytes:
    """A certs-only (or CRL-only) SignedData without signers (RFC 8894 §3.4, §4.2.1.2).
    The certificates stay in the order given (RA, issuing CA, its issuers): SCEP clients
    such as certmonger take the RA and CA certificates by position, so the SET OF is not
    sorted as DER would have it (BER allows any order)."""
    carried = (tlv(0xA0, b"".join(c.public_bytes(serialization.Encoding.DER)
                                  for c in certificates)) if certificates else b"")
    revocation = tlv(0xA1, b"".join(sorted(crls))) if crls else b""
    return content_info(ID_SIGNED_DATA, tlv(SEQUENCE, _integer(1) + tlv(SET, b"")
                                             + tlv(SEQUENCE, oid(ID_DATA)) + carried
                                             + revocation + tlv(SET, b"")))
