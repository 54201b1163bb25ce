"""CRMF certificate requests (RFC 4211) as certification requests of the issuance path.

A `CertReqMsg` carries a certificate template (§5) and a proof of possession (§4.1): a
signature by the new key over the DER of `certReq` (RFC 9483 §4.1.1 requires the
signature form, without `poposkInput`). `CRMFRequest` offers what the core reads from a
PKCS #10 request (subject, public key, extensions, `is_signature_valid`), so an ir, cr or
kur takes the same single issuance path as a CSR.

`cryptography` parses names and extensions only inside certificates and CSRs: the
template's subject, key and extensions are wrapped in a CertificationRequestInfo with an
empty signature (never trusted: possession is checked here, on the CRMF signature).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_alt_modules import rfc2986, rfc4211, rfc5280

from iotpki.wire.cmp.algorithms import SignatureCheckError, verify_signature
from iotpki.wire.errors import DecodeError

# PKCS #9 extensionRequest (RFC 2985 §5.4.2)
_EXTENSION_REQUEST = univ.ObjectIdentifier("1.2.840.113549.1.9.14")


class CRMFRequest:
    """One decoded `CertReqMsg`; `der` is exactly what the client sent."""

    def __init__(self, der: bytes) -> None:
        try:
            message, rest = decoder.decode(der, asn1Spec=rfc4211.CertReqMsg())
        except (PyAsn1Error, ValueError, TypeError) as exc:
            raise DecodeError(f"malformed CRMF request: {exc}") from exc
        if rest:
            raise DecodeError("trailing bytes after the CRMF request")
        self.der = der
        self._message = message
        template = message["certReq"]["certTemplate"]
        if not template["publicKey"].isValue:
            raise DecodeError("the certificate template names no public key (central key "
                              "generation is not offered)")
        self._view = _template_view(template)

    @property
    def cert_req_id(self) -> int:
        return int(self._message["certReq"]["certReqId"])

    @property
    def subject(self) -> x509.Name:
        return self._view.subject

    @property
    def extensions(self) -> x509.Extensions:
        return self._view.extensions

    def public_key(self) -> Any:
        return self._view.public_key()

    def public_bytes(self, encoding: serialization.Encoding) -> bytes:
        return self.der

    @property
    def is_signature_valid(self) -> bool:
        """RFC 4211 §4.1: the POPOSigningKey signature over DER(certReq) by the new key."""
        popo = self._message["popo"]
        if not popo.isValue or popo.getName() != "signature":
            return False
        signing = popo["signature"]
        if signing["poposkInput"].isValue:
            return False  # only allowed when the template lacks subject or key (§4.1 (3))
        data = encoder.encode(self._message["certReq"])
        try:
            verify_signature(self.public_key(), str(signing["algorithmIdentifier"]["algorithm"]),
                             signing["signature"].asOctets(), data)
        except SignatureCheckError:
            return False
        return True


def _template_view(template: Any) -> x509.CertificateSigningRequest:
    info = rfc2986.CertificationRequestInfo()
    info["version"] = 0
    info["subject"] = _name(template)
    info["subjectPKInfo"] = _spki(template["publicKey"])
    attributes = info["attributes"]
    if template["extensions"].isValue:
        extensions = rfc5280.Extensions()
        for extension in template["extensions"]:
            extensions.append(extension)
        attribute = rfc2986.Attribute()
        attribute["type"] = _EXTENSION_REQUEST
        attribute["values"].append(extensions)
        attributes.append(attribute)
    request = rfc2986.CertificationRequest()
    request["certificationRequestInfo"] = info
    request["signatureAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.10045.4.3.2")
    request["signature"] = univ.BitString(hexValue="00")
    try:
        view = x509.load_der_x509_csr(encoder.encode(request))
        view.public_key()
        view.subject.rfc4514_string()
        _ = list(view.extensions)
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise DecodeError(f"malformed certificate template: {exc}") from exc
    return view


def _name(template: Any) -> Any:
    name = rfc5280.Name()
    if template["subject"].isValue:
        rdns = rfc5280.RDNSequence()
        for rdn in template["subject"][0]:
            rdns.append(rdn)
        name["rdnSequence"] = rdns
    else:
        name["rdnSequence"] = rfc5280.RDNSequence()
    return name


def _spki(public_key: Any) -> Any:
    """The template's (implicitly tagged) key as a plain SubjectPublicKeyInfo."""
    spki = rfc5280.SubjectPublicKeyInfo()
    spki["algorithm"]["algorithm"] = public_key["algorithm"]["algorithm"]
    if public_key["algorithm"]["parameters"].isValue:
        spki["algorithm"]["parameters"] = public_key["algorithm"]["parameters"]
    spki["subjectPublicKey"] = public_key["subjectPublicKey"]
    return spki
