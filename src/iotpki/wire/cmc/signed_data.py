"""CMS SignedData (RFC 5652 §5) as CMC carries it (RFC 5272 §3.2, §3.3): decoded from
hostile bytes, and one SignerInfo checked against a public key.

- §5.1: the encapsulated content must be present (a Full PKI Request is never detached).
- §5.3: signed attributes are required here (the content type is not id-data, §5.3):
  contentType must equal eContentType (§11.1), messageDigest the digest of the content
  (§11.2); the signature covers their DER as a SET OF (§5.4). signingTime (§11.3) is read
  for the caller's clock check.
- §5.3 sid: issuerAndSerialNumber (a certificate in `certificates`) or
  subjectKeyIdentifier (RFC 5272 §3.2.1.3.1 lets a request be signed with the key it
  certifies; the caller finds that key).
- Signature algorithms: those of `wire.cmp.algorithms` (RFC 9481 §3), plus the
  rsaEncryption and id-ecPublicKey OIDs that CMS signers put in signatureAlgorithm
  (RFC 3370 §3.2, RFC 5753 §2.1.1), with the hash of digestAlgorithm.

CMS is BER (RFC 5652 §1.1.1: only signed attributes must be DER): BouncyCastle, for one,
sends indefinite lengths. The request is first rewritten with definite lengths
(`ber_to_der_lengths`, a bounded structural walk that also keeps garbage away from pyasn1's
costly error path), then read with pyasn1's DER decoder.

An AuthenticatedData (RFC 5652 §9, the RFC 5272 §3.2.3 form of a Full PKI Request) is
recognised and refused with its own error (CMCFailInfo authDataFail).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ, useful
from pyasn1_alt_modules import rfc5280, rfc5652

import iotpki.wire.asn1_cost  # noqa: F401  (cheap pyasn1 error text for hostile input)
from iotpki.wire.cmp.algorithms import (
    SignatureCheckError,
    UnsupportedSignatureError,
    is_signature_algorithm,
    verify_signature,
)
from iotpki.wire.decoding import MALFORMED, decoding, short_reason
from iotpki.wire.der import read_tlv, tlv
from iotpki.wire.errors import DecodeError, PKIError

ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_AUTH_DATA = "1.2.840.113549.1.9.16.1.2"  # id-ct-authData (RFC 5652 §9)
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_TIME = "1.2.840.113549.1.9.5"
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1, "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512}


class CMSSignatureError(PKIError):
    """A SignerInfo that does not verify (CMCFailInfo badMessageCheck)."""


class CMSAlgorithmError(CMSSignatureError):
    """A digest or signature algorithm we do not verify (CMCFailInfo badAlg)."""


class AuthenticatedDataError(DecodeError):
    """The request is an AuthenticatedData, which is not served (CMCFailInfo authDataFail)."""


@dataclass(frozen=True)
class SignerInfo:
    issuer: bytes | None  # DER Name of issuerAndSerialNumber
    serial: int | None
    key_id: bytes | None  # subjectKeyIdentifier
    digest_algorithm: str
    signed_attributes: bytes  # DER, as a SET OF: what the signature covers (§5.4)
    signature_algorithm: str
    signature_parameters: bytes | None
    signature: bytes
    content_type: str | None  # the contentType attribute
    message_digest: bytes | None
    signing_time: datetime | None


@dataclass(frozen=True)
class SignedContent:
    content_type: str
    content: bytes
    certificates: tuple[x509.Certificate, ...]
    signers: tuple[SignerInfo, ...]

    def certificate_of(self, signer: SignerInfo) -> x509.Certificate | None:
        """The certificate an issuerAndSerialNumber sid names, if it came along."""
        for certificate in self.certificates:
            if (certificate.serial_number == signer.serial
                    and certificate.issuer.public_bytes() == signer.issuer):
                return certificate
        return None


def decode_signed_data(der: bytes) -> SignedContent:
    """A ContentInfo holding a SignedData with encapsulated content; `DecodeError` else
    (`AuthenticatedDataError` for an AuthenticatedData)."""
    der = ber_to_der_lengths(der)
    try:
        info, rest = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
        if rest:
            raise DecodeError("trailing bytes after the ContentInfo")
        kind = str(info["contentType"])
        if kind == ID_AUTH_DATA:
            raise AuthenticatedDataError("AuthenticatedData (RFC 5272 §3.2.3) is not served: "
                                         "sign the PKIData (SignedData)")
        if kind != ID_SIGNED_DATA:
            raise DecodeError(f"the ContentInfo holds {kind}, not a SignedData")
        signed, rest = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.SignedData())
        if rest:
            raise DecodeError("trailing bytes after the SignedData")
        encapsulated = signed["encapContentInfo"]
        if not encapsulated["eContent"].isValue:
            raise DecodeError("the SignedData has no encapsulated content (detached)")
        certificates = _certificates(signed)
        signers = tuple(_signer_info(s) for s in signed["signerInfos"])
    except DecodeError:
        raise
    except MALFORMED as exc:
        raise DecodeError(f"malformed SignedData: {short_reason(exc)}") from exc
    return SignedContent(str(encapsulated["eContentType"]), bytes(encapsulated["eContent"]),
                         certificates, signers)


_MAX_DEPTH = 32
_OCTET_STRING, _CONSTRUCTED_OCTET_STRING = 0x04, 0x24


def ber_to_der_lengths(data: bytes) -> bytes:
    """`data` (exactly one BER element, X.690 §8.1) with definite lengths everywhere and
    constructed OCTET STRINGs joined into primitive ones (X.690 §10.1, §10.2): the form
    pyasn1's DER decoder reads. `DecodeError` unless the tree parses (single-octet tags,
    indefinite lengths only on constructed elements, at most `_MAX_DEPTH` levels); this
    also keeps garbage away from pyasn1's costly error path."""
    element, end = _normalized(data, 0, 0)
    if end != len(data):
        raise DecodeError("trailing bytes after the BER element")
    return element


def _normalized(data: bytes, offset: int, depth: int) -> tuple[bytes, int]:
    """(the element at `offset`, normalized; the offset just past it)."""
    if depth > _MAX_DEPTH:
        raise DecodeError("BER nested too deeply")
    if offset + 2 > len(data):
        raise DecodeError("truncated BER element")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise DecodeError("multi-byte BER tags are not used in CMS")
    start, end = offset + 2, None
    if first == 0x80:
        if not tag & 0x20:
            raise DecodeError("indefinite length on a primitive BER element")
    elif first & 0x80:
        count = first & 0x7F
        if count > 4 or start + count > len(data):
            raise DecodeError("unsupported BER length")
        end = start + count + int.from_bytes(data[start:start + count], "big")
        start += count
    else:
        end = start + first
    if end is not None and end > len(data):
        raise DecodeError("truncated BER element")
    if not tag & 0x20:
        assert end is not None
        return data[offset:end], end
    parts, position = [], start
    while (position < end) if end is not None else (data[position:position + 2] != b"\0\0"):
        part, position = _normalized(data, position, depth + 1)
        parts.append(part)
    if end is None:
        end = position + 2
    elif position != end:
        raise DecodeError("BER element overruns its container")
    if tag == _CONSTRUCTED_OCTET_STRING:  # X.690 §8.7.3: the segments' octets, joined
        if any(p[0] != _OCTET_STRING for p in parts):
            raise DecodeError("a constructed OCTET STRING holds only OCTET STRINGs")
        return tlv(_OCTET_STRING, b"".join(_value(p) for p in parts)), end
    return tlv(tag, b"".join(parts)), end


def _value(element: bytes) -> bytes:
    _, start, end = read_tlv(element, 0)
    return element[start:end]


def _certificates(signed: Any) -> tuple[x509.Certificate, ...]:
    """The certificates carried, parsed (names are parsed lazily by `cryptography`: touched
    here). One with a non-positive serial number (RFC 5280 §4.1.2.2), which `cryptography`
    parses with a deprecation warning and will refuse, is refused now."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        try:
            certificates = tuple(
                x509.load_der_x509_certificate(encoder.encode(choice["certificate"]))
                for choice in (signed["certificates"] if signed["certificates"].isValue
                               else ())
                if choice.getName() == "certificate")
            for certificate in certificates:
                if certificate.serial_number <= 0:
                    raise DecodeError("a certificate of the SignedData has a non-positive "
                                      "serial number (RFC 5280 §4.1.2.2)")
                certificate.subject.rfc4514_string()
                certificate.issuer.rfc4514_string()
        except CryptographyDeprecationWarning as exc:
            raise DecodeError(f"a certificate of the SignedData is malformed: {exc}") from exc
    return certificates


def _signer_info(info: Any) -> SignerInfo:
    sid = info["sid"]
    issuer = serial = key_id = None
    if sid.getName() == "issuerAndSerialNumber":
        issuer = bytes(encoder.encode(sid["issuerAndSerialNumber"]["issuer"]))
        serial = int(sid["issuerAndSerialNumber"]["serialNumber"])
    else:
        key_id = bytes(sid["subjectKeyIdentifier"])
    attributes = info["signedAttrs"]
    if not attributes.isValue:
        raise DecodeError("RFC 5652 §5.3: a SignerInfo over content other than id-data "
                          "carries signed attributes")
    values = _attributes(attributes)
    parameters = info["signatureAlgorithm"]["parameters"]
    return SignerInfo(
        issuer, serial, key_id, str(info["digestAlgorithm"]["algorithm"]),
        b"\x31" + bytes(encoder.encode(attributes))[1:],
        str(info["signatureAlgorithm"]["algorithm"]),
        bytes(parameters) if parameters.isValue else None, bytes(info["signature"]),
        _single(values, _CONTENT_TYPE, univ.ObjectIdentifier(), str),
        _single(values, _MESSAGE_DIGEST, univ.OctetString(), bytes),
        _single(values, _SIGNING_TIME, rfc5280.Time(), _time))


def _attributes(attributes: Any) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for attribute in attributes:
        kind = str(attribute["attrType"])
        if kind in found:
            raise DecodeError(f"RFC 5652 §5.3: signed attribute {kind} appears twice")
        found[kind] = [bytes(v) for v in attribute["attrValues"]]
    return found


def _single(values: dict[str, list[bytes]], kind: str, spec: Any,
            convert: Callable[[Any], Any]) -> Any:
    if kind not in values:
        return None
    if len(values[kind]) != 1:
        raise DecodeError(f"RFC 5652 §11: attribute {kind} has exactly one value")
    value, rest = decoder.decode(values[kind][0], asn1Spec=spec)
    if rest:
        raise DecodeError(f"trailing bytes in attribute {kind}")
    return convert(value)


def _time(value: Any) -> datetime:
    choice = value.getComponent()
    if isinstance(choice, useful.UTCTime | useful.GeneralizedTime):
        moment: datetime = choice.asDateTime
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    raise DecodeError("signingTime is neither UTCTime nor GeneralizedTime")


def verify_signer(content: SignedContent, signer: SignerInfo, public_key: Any) -> None:
    """RFC 5652 §5.4, §5.6: raise `CMSSignatureError` unless `signer` signed `content` with
    `public_key` (`CMSAlgorithmError` for an algorithm we do not verify)."""
    digest_class = DIGESTS.get(signer.digest_algorithm)
    if digest_class is None:
        raise CMSAlgorithmError(f"unsupported digest algorithm {signer.digest_algorithm}")
    if signer.content_type != content.content_type:
        raise CMSSignatureError("RFC 5652 §11.1: the contentType attribute is missing or is "
                                "not the eContentType")
    digest = hashlib.new(digest_class().name, content.content).digest()
    if signer.message_digest is None or signer.message_digest != digest:
        raise CMSSignatureError("RFC 5652 §11.2: messageDigest does not match the content")
    with decoding("signer key"):
        _verify(public_key, signer, digest_class())


def _verify(public_key: Any, signer: SignerInfo, digest: hashes.HashAlgorithm) -> None:
    data, signature = signer.signed_attributes, signer.signature
    try:
        if signer.signature_algorithm == _RSA_ENCRYPTION and isinstance(public_key,
                                                                        rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
        elif signer.signature_algorithm == _EC_PUBLIC_KEY and isinstance(
                public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif is_signature_algorithm(signer.signature_algorithm):
            verify_signature(public_key, signer.signature_algorithm, signature, data,
                             signer.signature_parameters)
        else:
            raise CMSAlgorithmError(f"unsupported signature algorithm "
                                    f"{signer.signature_algorithm}")
    except UnsupportedSignatureError as exc:
        raise CMSAlgorithmError(str(exc)) from exc
    except (SignatureCheckError, InvalidSignature) as exc:
        raise CMSSignatureError("the SignedData signature does not verify") from exc
