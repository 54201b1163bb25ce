"""Central key generation in CMP (RFC 9483 §4.1.6, RFC 9810 §5.1 and §5.3.4), codec side.

- A CertReqMsg whose certTemplate has no publicKey, or one with an algorithm and a
  zero-length subjectPublicKey, asks the server to make the key pair; the algorithm (and
  for EC the curve) in the latter names the key type the client wants.
- `template_certification_request` turns the template and the server-made key into a
  PKCS #10 request signed by that key, so issuance takes its single path.
- The key goes back in CertifiedKeyPair.privateKey as EnvelopedData
  (`iotpki.wire.key_package`); `encrypted_key` gives the EncryptedKey encoding.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ

from iotpki.wire.cmp.crmf import CRMFRequest, _template_view
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import signature_hash_for

_EC = "1.2.840.10045.2.1"
_CURVES = {"1.2.840.10045.3.1.7": "ec-p256", "1.3.132.0.34": "ec-p384"}
_RSA = "1.2.840.113549.1.1.1"
_BARE = {"1.3.101.112": "ed25519"}


def requested_key_types(request: CRMFRequest, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The key types of `allowed` that the template's algorithm (if any) admits, in the
    profile's order; empty when the client asks for one the profile does not allow."""
    key = request.template["publicKey"]
    if not key.isValue:
        return allowed
    algorithm = str(key["algorithm"]["algorithm"])
    if algorithm == _EC:
        parameters = key["algorithm"]["parameters"]
        curve = None
        if parameters.isValue:
            try:
                curve = str(decoder.decode(bytes(parameters), asn1Spec=univ.ObjectIdentifier())[0])
            except PyAsn1Error:
                curve = None
        wanted = {_CURVES[curve]} if curve in _CURVES else set()
        return tuple(t for t in allowed if t in wanted)
    if algorithm == _RSA:
        return tuple(t for t in allowed if t.startswith("rsa-"))
    return tuple(t for t in allowed if _BARE.get(algorithm) == t)


def template_certification_request(request: CRMFRequest, key: Any) -> bytes:
    """DER of a PKCS #10 request with the template's subject and extensions, for `key`,
    signed by it (the possession the template could not prove)."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    view = _template_view(request.template_der, spki)
    builder = x509.CertificateSigningRequestBuilder().subject_name(view.subject)
    try:
        for extension in view.extensions:
            builder = builder.add_extension(extension.value, extension.critical)
    except ValueError as exc:
        raise DecodeError(f"malformed extensions in the certificate template: {exc}") from exc
    csr = builder.sign(key, signature_hash_for(key))
    return csr.public_bytes(serialization.Encoding.DER)


def encrypted_key(enveloped_data: bytes) -> bytes:
    """EncryptedKey's envelopedData choice: [0] IMPLICIT EnvelopedData (RFC 4211 is an
    IMPLICIT TAGS module), i.e. the SEQUENCE tag replaced by [0] constructed."""
    return bytes((0xA0,)) + enveloped_data[1:]

