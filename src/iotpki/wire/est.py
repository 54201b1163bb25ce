"""EST message codecs (RFC 7030 §4, as clarified by RFC 8951), shared by the EST server
adapter and the device agent. No I/O, no server dependencies.

- §4.1.3, §4.2.3: certs-only CMC Simple PKI Response = a degenerate PKCS#7 SignedData
  (RFC 5652 §5) holding certificates only, sent base64 (RFC 8951 §3: the body is base64
  whatever the Content-Transfer-Encoding header says).
- §4.2.1: the request body is a base64 DER PKCS#10 request (`application/pkcs10`).
- §4.4.2: server-side key generation answers `multipart/mixed` with an `application/pkcs8`
  part (the private key) and an `application/pkcs7-mime; smime-type=certs-only` part; the
  multipart body follows RFC 2046 §5.1.1 to the byte: CRLF ends every header and base64 line
  of a part, and every delimiter is CRLF "--" boundary (strict parsers need both).
- §4.5.2: CSR attributes, `CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID` in DER.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ

from iotpki.wire.decoding import decoding, loaded_csr
from iotpki.wire.der import tlv
from iotpki.wire.errors import DecodeError

__all__ = [
    "CERTS_ONLY",
    "CSR_ATTRS",
    "PKCS8",
    "PKCS10",
    "CsrAttribute",
    "ServerKeygenParts",
    "certificate_part",
    "csr_attributes_for_key_type",
    "decode_base64_body",
    "decode_certs_only",
    "decode_csr_attributes",
    "decode_csr_body",
    "decode_multipart",
    "decode_serverkeygen",
    "encode_base64_body",
    "encode_certs_only",
    "encode_csr_attributes",
    "encode_multipart",
    "encode_serverkeygen",
]

PKCS10 = "application/pkcs10"
PKCS8 = "application/pkcs8"
CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
CSR_ATTRS = "application/csrattrs"
LINE = 64  # base64 line length, as in PEM (RFC 7468 §2)

_WHITESPACE = re.compile(rb"\s+")
_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.DOTALL)


def encode_base64_body(der: bytes, newline: bytes = b"\n") -> bytes:
    """Base64 in lines of 64 characters, each ending in `newline` (RFC 8951 §3.2: line
    breaks are whitespace). LF for a whole HTTP body (`base64 -d` and `openssl base64 -d`
    alike read it); CRLF inside a MIME part (RFC 2045 §6.8, RFC 2046 §5.1.1)."""
    text = base64.b64encode(der)
    return b"".join(text[i:i + LINE] + newline for i in range(0, len(text), LINE))


def decode_base64_body(body: bytes) -> bytes:
    """The DER inside a base64 body; line breaks are ignored, anything else must be base64."""
    compact = _WHITESPACE.sub(b"", body)
    if not compact:
        raise DecodeError("empty body: a base64-encoded DER structure is expected")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"body is not valid base64: {exc}") from exc


def decode_csr_body(body: bytes) -> bytes:
    """RFC 7030 §4.2.1: the DER PKCS#10 request of a simpleenroll body. A PEM request
    (`-----BEGIN CERTIFICATE REQUEST-----`) is accepted as well: some clients send it."""
    pem = _PEM.search(body)
    der = decode_base64_body(pem.group(1) if pem else body)
    with decoding("body: not a DER PKCS#10 certification request"):
        loaded_csr(x509.load_der_x509_csr(der))
    return der


def encode_certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """RFC 7030 §4.1.3 / §4.2.3: base64 of a certs-only PKCS#7 (degenerate SignedData)."""
    return encode_base64_body(pkcs7.serialize_certificates(list(certificates), Encoding.DER))


def decode_certs_only(body: bytes) -> list[x509.Certificate]:
    """The certificates of a base64 certs-only PKCS#7 body (client side of §4.1.3)."""
    der = decode_base64_body(body)
    try:
        return pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise DecodeError(f"body is not a certs-only PKCS#7: {exc}") from exc


# -- server-side key generation (RFC 7030 §4.4.2) ------------------------------------------------

@dataclass(frozen=True)
class ServerKeygenParts:
    private_key_pkcs8: bytes  # DER PrivateKeyInfo (RFC 5958)
    certificate: x509.Certificate


def encode_multipart(parts: Sequence[tuple[str, bytes]]) -> tuple[str, bytes]:
    """(Content-Type with its boundary, body) of a `multipart/mixed` whose parts are
    (media type, DER) pairs sent base64 (RFC 7030 §4.4.2, RFC 2046 §5.1.1):

        --B CRLF headers CRLF CRLF base64-lines-each-ending-in-CRLF
        --B CRLF ... CRLF --B-- CRLF

    The CRLF that ends a part's last base64 line is the one the next delimiter begins with
    (RFC 2046: "the CRLF preceding the boundary delimiter line is conceptually attached to
    the boundary"), so the part content is exactly its base64 text."""
    boundary = f"est-{secrets.token_hex(12)}"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {media}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .encode() + encode_base64_body(der, b"\r\n") for media, der in parts)
    return f"multipart/mixed; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def decode_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The decoded DER of each base64 part of a `multipart/mixed` body, by lower-case media
    type (parameters kept). Tolerant, as a client should be: LF line ends are read too."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise DecodeError(f"not a multipart/mixed answer: {content_type!r}")
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(match.group(1).encode()))
    found: dict[str, bytes] = {}
    for part in delimiter.split(body)[1:]:
        if part.startswith(b"--"):
            break  # the close delimiter: the epilogue follows
        pieces = re.split(rb"\r?\n\r?\n", part, maxsplit=1)
        head, content = pieces[0], pieces[1] if len(pieces) > 1 else b""
        media = re.search(rb"(?im)^content-type:[ \t]*([^\r\n]+)", head)
        if media is not None:
            key = re.sub(r"\s*;\s*", "; ", media.group(1).strip().decode(errors="replace"))
            found[key.lower()] = decode_base64_body(content)
    return found


def encode_serverkeygen(private_key_pkcs8: bytes,
                        certificate: x509.Certificate) -> tuple[str, bytes]:
    """(Content-Type with its boundary, body) of a §4.4.2 multipart/mixed answer."""
    return encode_multipart(((PKCS8, private_key_pkcs8), (CERTS_ONLY, pkcs7.serialize_certificates(
        [certificate], Encoding.DER))))


def decode_serverkeygen(content_type: str, body: bytes) -> ServerKeygenParts:
    """The private key and certificate of a §4.4.2 answer (client side)."""
    found = decode_multipart(content_type, body)
    if PKCS8 not in found:
        raise DecodeError("answer lacks the application/pkcs8 part")
    return ServerKeygenParts(found[PKCS8], certificate_part(found))


def certificate_part(found: dict[str, bytes]) -> x509.Certificate:
    """The certificate of the certs-only part of a decoded §4.4.2 answer."""
    der = next((v for k, v in found.items()
                if k.startswith("application/pkcs7-mime") and "certs-only" in k), None)
    if der is None:
        raise DecodeError("answer lacks the application/pkcs7-mime; smime-type=certs-only part")
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise DecodeError(f"certificate part is not a certs-only PKCS#7: {exc}") from exc
    if not certificates:
        raise DecodeError("certificate part holds no certificate")
    return certificates[0]


# -- CSR attributes (RFC 7030 §4.5.2) -----------------------------------------------------------

@dataclass(frozen=True)
class CsrAttribute:
    """One AttrOrOID: a bare OID (`values` empty) or an attribute with DER-encoded values."""

    oid: str
    values: tuple[bytes, ...] = ()


EC_PUBLIC_KEY = "1.2.840.10045.2.1"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_CURVE_OIDS = {"ec-p256": "1.2.840.10045.3.1.7", "ec-p384": "1.3.132.0.34"}
_SIGNATURE_OIDS = {"ec-p256": "1.2.840.10045.4.3.2", "ec-p384": "1.2.840.10045.4.3.3",
                   "rsa": "1.2.840.113549.1.1.11"}
_BARE_KEY_OIDS = {"ed25519": "1.3.101.112", "ml-dsa-44": "2.16.840.1.101.3.4.3.17",
                  "ml-dsa-65": "2.16.840.1.101.3.4.3.18", "ml-dsa-87": "2.16.840.1.101.3.4.3.19"}


def csr_attributes_for_key_type(key_type: str) -> list[CsrAttribute]:
    """RFC 7030 §4.5.2 (example): the key algorithm as an attribute whose value names the
    curve or the RSA size, and the signature algorithm to sign the CSR with."""
    if key_type in _CURVE_OIDS:
        curve = der_encoder.encode(univ.ObjectIdentifier(_CURVE_OIDS[key_type]))
        return [CsrAttribute(EC_PUBLIC_KEY, (curve,)), CsrAttribute(_SIGNATURE_OIDS[key_type])]
    if key_type.startswith("rsa-"):
        size = der_encoder.encode(univ.Integer(int(key_type.removeprefix("rsa-"))))
        return [CsrAttribute(RSA_ENCRYPTION, (size,)), CsrAttribute(_SIGNATURE_OIDS["rsa"])]
    if key_type in _BARE_KEY_OIDS:
        return [CsrAttribute(_BARE_KEY_OIDS[key_type])]
    raise DecodeError(f"no CSR attribute is defined for key type {key_type!r}")


def encode_csr_attributes(attributes: Sequence[CsrAttribute]) -> bytes:
    """DER of CsrAttrs; an attribute is SEQUENCE { type OID, values SET OF ANY }."""
    sequence = univ.SequenceOf(componentType=univ.Any())
    for index, attribute in enumerate(attributes):
        oid = der_encoder.encode(univ.ObjectIdentifier(attribute.oid))
        if attribute.values:
            values = b"".join(sorted(attribute.values))  # DER: SET OF in sorted order
            element = tlv(0x30, oid + tlv(0x31, values))
        else:
            element = oid
        sequence.setComponentByPosition(index, univ.Any(element))
    return bytes(der_encoder.encode(sequence))


def decode_csr_attributes(der: bytes) -> list[CsrAttribute]:
    """CsrAttrs from DER (client side of §4.5.2)."""
    try:
        items, rest = der_decoder.decode(der, asn1Spec=univ.SequenceOf(componentType=univ.Any()))
        if rest:
            raise DecodeError("trailing bytes after CsrAttrs")
        return [_attribute(bytes(item)) for item in items]
    except PyAsn1Error as exc:
        raise DecodeError(f"malformed CsrAttrs: {exc}") from exc


def _attribute(element: bytes) -> CsrAttribute:
    if element[0] == 0x06:
        oid, _ = der_decoder.decode(element, asn1Spec=univ.ObjectIdentifier())
        return CsrAttribute(str(oid))
    decoded, _ = der_decoder.decode(element)
    oid, values = decoded[0], decoded[1]
    return CsrAttribute(str(oid), tuple(bytes(der_encoder.encode(v)) for v in values))
