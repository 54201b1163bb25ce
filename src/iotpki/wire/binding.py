"""The component-binding extension: a device certificate commits to the component
identities the device was built from (DESIGN.md §1 step 3).

    id-iotpki-componentBinding  OBJECT IDENTIFIER ::= { 2 25 <UUID> }   -- X.667 UUID arc
    ComponentBinding ::= SEQUENCE {
        hashAlgorithm   AlgorithmIdentifier,   -- id-sha256, parameters NULL
        digest          OCTET STRING }         -- SHA-256 over the sorted component fingerprints

The digest input is the components' SHA-256 certificate fingerprints, lowercase hex,
sorted, joined with "\\n". A verifier holding the device record (or the components'
certificates) recomputes it. The extension is non-critical: relying parties that do not
know it ignore it (RFC 5280 §4.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography import x509
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, univ
from pyasn1_alt_modules import rfc5280

from iotpki.wire.errors import DecodeError

COMPONENT_BINDING_OID = x509.ObjectIdentifier("2.25.132251518460485339258037566350564393930")
_SHA256 = univ.ObjectIdentifier("2.16.840.1.101.3.4.2.1")


class _ComponentBinding(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("hashAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("digest", univ.OctetString()),
    )


def components_digest(fingerprints: Iterable[str]) -> bytes:
    normalized = sorted(f.lower().replace(":", "") for f in fingerprints)
    return hashlib.sha256("\n".join(normalized).encode()).digest()


def encode_component_binding(digest: bytes) -> x509.UnrecognizedExtension:
    value = _ComponentBinding()
    algorithm = value["hashAlgorithm"]
    algorithm["algorithm"] = _SHA256
    algorithm["parameters"] = der_encoder.encode(univ.Null(""))
    value["digest"] = digest
    return x509.UnrecognizedExtension(COMPONENT_BINDING_OID, der_encoder.encode(value))


def decode_component_binding(certificate: x509.Certificate) -> bytes | None:
    """The committed digest, or None when the certificate carries no binding."""
    try:
        extension = certificate.extensions.get_extension_for_oid(COMPONENT_BINDING_OID)
    except x509.ExtensionNotFound:
        return None
    raw = extension.value
    assert isinstance(raw, x509.UnrecognizedExtension)
    try:
        value, rest = der_decoder.decode(raw.value, asn1Spec=_ComponentBinding())
    except PyAsn1Error as exc:
        raise DecodeError(f"malformed component binding: {exc}") from exc
    if rest or value["hashAlgorithm"]["algorithm"] != _SHA256:
        raise DecodeError("component binding must be a SHA-256 digest")
    return bytes(value["digest"])
