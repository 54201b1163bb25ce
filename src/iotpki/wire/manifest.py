"""Supply-chain manifests: the signed list of identities one organization hands the next.

The document is versioned JSON (version 1); it travels as the encapsulated content of a
CMS SignedData (RFC 5652 §5) signed with the sender's manifest-signer certificate, and
optionally inside a CMS EnvelopedData (RFC 5652 §6) for the recipient. `openssl cms
-verify` accepts what `sign_manifest` makes. `cryptography` signs and envelopes but does
not verify CMS, so `open_signed_manifest` checks the signature itself (RFC 5652 §5.4:
message digest attribute over the content, signature over the DER SET OF signed
attributes); chain validation and revocation are the caller's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5652

from iotpki.wire.decoding import MALFORMED, decoding, short_reason
from iotpki.wire.errors import DecodeError, PKIError

MANIFEST_VERSION = 1
_MESSAGE_DIGEST = univ.ObjectIdentifier("1.2.840.113549.1.9.4")
_CONTENT_TYPE = univ.ObjectIdentifier("1.2.840.113549.1.9.3")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}


class ManifestSignatureError(PKIError):
    """A manifest whose CMS signature does not verify."""


@dataclass(frozen=True)
class ManifestEntry:
    fingerprint: str  # SHA-256 of the identity certificate's DER, lowercase hex
    issuer: str  # RFC 4514
    serial: str  # hex
    component_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    delivery_id: str
    sender: str
    recipient: str
    issued_at: datetime
    expires_at: datetime
    entries: tuple[ManifestEntry, ...]
    version: int = MANIFEST_VERSION


def encode_manifest(manifest: Manifest) -> bytes:
    return json.dumps({
        "version": manifest.version, "delivery_id": manifest.delivery_id,
        "sender": manifest.sender, "recipient": manifest.recipient,
        "issued_at": manifest.issued_at.isoformat(), "expires_at": manifest.expires_at.isoformat(),
        "entries": [[e.fingerprint, e.issuer, e.serial, e.component_id, dict(e.attributes)]
                    for e in manifest.entries],
    }, separators=(",", ":"), sort_keys=True).encode()


def decode_manifest(data: bytes) -> Manifest:
    try:
        doc = json.loads(data)
        if doc.get("version") != MANIFEST_VERSION:
            raise DecodeError(f"unsupported manifest version {doc.get('version')!r}")
        entries = tuple(_entry(*item) for item in doc["entries"])
        return Manifest(str(doc["delivery_id"]), str(doc["sender"]), str(doc["recipient"]),
                        _aware(doc["issued_at"]), _aware(doc["expires_at"]), entries)
    except DecodeError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DecodeError(f"malformed manifest document: {exc}") from exc


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX = re.compile(r"[0-9a-fA-F]{1,40}")  # fullmatch: `$` would let a final newline in


def _entry(fingerprint: str, issuer: str, serial: str, component_id: str,
           attributes: dict[str, Any]) -> ManifestEntry:
    if not (isinstance(fingerprint, str) and _HEX64.fullmatch(fingerprint)):
        raise DecodeError(f"entry fingerprint {fingerprint!r} is not a SHA-256 in hex")
    if not (isinstance(serial, str) and _HEX.fullmatch(serial)):
        raise DecodeError(f"entry serial {serial!r} is not hex")
    if not isinstance(attributes, dict):
        raise DecodeError("entry attributes must be an object")
    return ManifestEntry(fingerprint, str(issuer), serial, str(component_id), attributes)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone")
    return moment


def sign_manifest(document: bytes, signer: x509.Certificate, key: Any,
                  chain: Sequence[x509.Certificate] = ()) -> bytes:
    """CMS SignedData (DER) with the document encapsulated and the signer's chain attached."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(document).add_signer(
        signer, key, hashes.SHA256())
    for certificate in chain:
        builder = builder.add_certificate(certificate)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary,
                                                     pkcs7.PKCS7Options.NoCapabilities])


def encrypt_manifest(signed: bytes, recipient: x509.Certificate) -> bytes:
    """CMS EnvelopedData (DER); `cryptography` supports RSA key-transport recipients only."""
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(signed).add_recipient(recipient)
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def is_enveloped(data: bytes) -> bool:
    try:
        info, _ = der_decoder.decode(data, asn1Spec=rfc5652.ContentInfo())
    except PyAsn1Error:
        return False
    return bool(info["contentType"] == rfc5652.id_envelopedData)


def decrypt_manifest(enveloped: bytes, recipient: x509.Certificate, key: Any) -> bytes:
    try:
        return pkcs7.pkcs7_decrypt_der(enveloped, recipient, key, [])
    except ValueError as exc:
        raise DecodeError(f"cannot decrypt manifest: {exc}") from exc


@dataclass(frozen=True)
class SignedManifest:
    document: bytes
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]  # every certificate carried in the CMS


def open_signed_manifest(data: bytes) -> SignedManifest:
    """Decode a CMS SignedData and check its signature (not the signer's chain)."""
    signed_data, certificates = _decode_signed_data(data)
    content = signed_data["encapContentInfo"]["eContent"]
    if not content.isValue:
        raise DecodeError("manifest has no encapsulated content (detached signature)")
    document = bytes(content)
    infos = signed_data["signerInfos"]
    if len(infos) != 1:
        raise DecodeError(f"manifest must have exactly one signer, has {len(infos)}")
    info = infos[0]
    # Names, keys and attributes are parsed only now: a signer's key on an unknown curve
    # (UnsupportedAlgorithm) or a malformed name is malformed input, not a fault of ours.
    with decoding("CMS manifest"):
        signer = _find_signer(info, certificates)
        _verify_signer_info(info, document, signer)
    return SignedManifest(document, signer, tuple(certificates))


def _decode_signed_data(data: bytes) -> tuple[Any, list[x509.Certificate]]:
    try:
        info, _ = der_decoder.decode(data, asn1Spec=rfc5652.ContentInfo())
        if info["contentType"] != rfc5652.id_signedData:
            raise DecodeError("manifest is not a CMS SignedData")
        signed, _ = der_decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.SignedData())
        certificates = [x509.load_der_x509_certificate(der_encoder.encode(choice["certificate"]))
                        for choice in signed["certificates"] if choice.getName() == "certificate"]
    except MALFORMED as exc:  # x509.InvalidVersion is no ValueError
        raise DecodeError(f"malformed CMS manifest: {short_reason(exc)}") from exc
    return signed, certificates


def _find_signer(info: Any, certificates: list[x509.Certificate]) -> x509.Certificate:
    sid = info["sid"]
    if sid.getName() != "issuerAndSerialNumber":
        raise DecodeError("manifest signer must be identified by issuer and serial number")
    issuer = der_encoder.encode(sid["issuerAndSerialNumber"]["issuer"])
    serial = int(sid["issuerAndSerialNumber"]["serialNumber"])
    for certificate in certificates:
        if certificate.serial_number == serial and certificate.issuer.public_bytes() == issuer:
            return certificate
    raise ManifestSignatureError("the signer's certificate is not in the manifest")


def _verify_signer_info(info: Any, document: bytes, signer: x509.Certificate) -> None:
    hash_class = _HASHES.get(str(info["digestAlgorithm"]["algorithm"]))
    if hash_class is None:
        raise ManifestSignatureError("unsupported digest algorithm in manifest signature")
    attributes = info["signedAttrs"]
    if not attributes.isValue:
        raise ManifestSignatureError("manifest signature has no signed attributes")
    digest = hashes.Hash(hash_class())
    digest.update(document)
    if _attribute(attributes, _MESSAGE_DIGEST) != digest.finalize():
        raise ManifestSignatureError("manifest content does not match its signed digest")
    # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31).
    signed_bytes = b"\x31" + der_encoder.encode(attributes)[1:]
    _verify_signature(signer, bytes(info["signature"]), signed_bytes, hash_class())


def _attribute(attributes: Any, oid: univ.ObjectIdentifier) -> bytes:
    for attribute in attributes:
        if attribute["attrType"] == oid:
            value, _ = der_decoder.decode(bytes(attribute["attrValues"][0]),
                                          asn1Spec=univ.OctetString())
            return bytes(value)
    raise ManifestSignatureError(f"manifest signature lacks the {oid} attribute")


def _verify_signature(signer: x509.Certificate, signature: bytes, data: bytes,
                      algorithm: hashes.HashAlgorithm) -> None:
    key: Any = signer.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            raise ManifestSignatureError(f"unsupported signer key {type(key).__name__}")
    except InvalidSignature as exc:
        raise ManifestSignatureError("manifest signature does not verify") from exc
