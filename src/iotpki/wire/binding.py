"""The component-binding extension: a device certificate commits to the component
identities the device was built from (DESIGN.md §1 step 3).

    componentBinding OBJECT IDENTIFIER ::= -- chosen by the operator in the device profile
    ComponentBinding ::= SEQUENCE {
        hashAlgorithm   AlgorithmIdentifier,   -- id-sha256, parameters NULL
        digest          OCTET STRING }         -- SHA-256 over the sorted component fingerprints

The digest input is the components' SHA-256 certificate fingerprints, lowercase hex,
sorted, joined with "\\n". A verifier holding the device record (or the components'
certificates) recomputes it. The extension is non-critical: relying parties that do not
know it ignore it (RFC 5280 §4.2). Its OID is the operator's, under their own Private
Enterprise Number: iotpki has none to give, and a UUID arc (2.25, X.667) has 128-bit arcs
that common parsers (Go's encoding/asn1, pkilint's decoder) reject. Examples and tests use
1.3.6.1.4.1.32473, the PEN that RFC 5612 reserves for documentation.
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

EXAMPLE_OID = "1.3.6.1.4.1.32473.1.1"  # RFC 5612 documentation PEN: never in production
_SHA256 = univ.ObjectIdentifier("2.16.840.1.101.3.4.2.1")


class _ComponentBinding(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("hashAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("digest", univ.OctetString()),
    )


def components_digest(fingerprints: Iterable[str]) -> bytes:
    normalized = sorted(f.lower().replace(":", "") for f in fingerprints)
    return hashlib.sha256("\n".join(normalized).encode()).digest()


def encode_component_binding(oid: str, digest: bytes) -> x509.UnrecognizedExtension:
    value = _ComponentBinding()
    algorithm = value["hashAlgorithm"]
    algorithm["algorithm"] = _SHA256
    algorithm["parameters"] = der_encoder.encode(univ.Null(""))
    value["digest"] = digest
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), der_encoder.encode(value))


def decode_component_binding(certificate: x509.Certificate, oid: str) -> bytes | None:
    """The committed digest, or None when the certificate carries no binding."""
    try:
        extension = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
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
