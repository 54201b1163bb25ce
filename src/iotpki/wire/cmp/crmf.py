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

from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc4211

from iotpki.wire.cmp.algorithms import SignatureCheckError, verify_signature
from iotpki.wire.cmp.tlv import check_tlv_tree
from iotpki.wire.decoding import MALFORMED, short_reason
from iotpki.wire.der import SEQUENCE, children, read_tlv, tlv
from iotpki.wire.errors import DecodeError

# PKCS #9 extensionRequest (RFC 2985 §5.4.2), DER
_EXTENSION_REQUEST = bytes.fromhex("06092a864886f70d01090e")
_VERSION_1 = bytes.fromhex("020100")
_OLD_CERT_ID = "1.3.6.1.5.5.7.5.1.5"  # id-regCtrl-oldCertID (RFC 4211 §6.5)
SET, ATTRIBUTES = 0x31, 0xA0
# ecdsa-with-SHA256 and an empty BIT STRING: never verified, see the module docstring.
_UNUSED_SIGNATURE = bytes.fromhex("300a06082a8648ce3d040302") + bytes.fromhex("030100")


class CRMFRequest:
    """One decoded `CertReqMsg`; `der` is exactly what the client sent."""

    def __init__(self, der: bytes) -> None:
        check_tlv_tree(der)
        try:
            message, rest = decoder.decode(der, asn1Spec=rfc4211.CertReqMsg())
        except (PyAsn1Error, ValueError, TypeError) as exc:
            raise DecodeError(f"malformed CRMF request ({exc.__class__.__name__})") from exc
        if rest:
            raise DecodeError("trailing bytes after the CRMF request")
        self.der = der
        self._message = message
        template = message["certReq"]["certTemplate"]
        self.template = template
        # RFC 9483 §4.1.6: no key, or an algorithm with an empty key, asks the server for one.
        self.central_keygen = (not template["publicKey"].isValue
                               or not len(template["publicKey"]["subjectPublicKey"]))
        # The DER as received, sliced (pyasn1 takes as long to re-encode as to decode; DER
        # is canonical, so a slice of a well-formed request is its re-encoding).
        self._cert_req = _first_child(der)
        self.template_der = _first_child(self._cert_req, 1)
        self._view = None if self.central_keygen else _template_view(template, self.template_der)
        # RFC 9483 §4.1.1: a template whose extensions do not parse (e.g. a pathLen without
        # cA) is a bad template, not a malformed message: kept for the server to answer.
        self.template_problem: str | None = None
        if self._view is not None:
            try:
                _ = list(self._view.extensions)
            except MALFORMED as exc:
                self.template_problem = (f"the template's extensions are invalid: "
                                         f"{short_reason(exc)}")

    @property
    def old_cert_id(self) -> tuple[bytes, int] | None:
        """The oldCertId control (RFC 4211 §6.5, RFC 9483 §4.1.3): (DER of the issuer's
        GeneralName, serial number), or None without one."""
        controls = self._message["certReq"]["controls"]
        for control in controls if controls.isValue else ():
            if str(control["type"]) == _OLD_CERT_ID:
                try:
                    value, rest = decoder.decode(bytes(control["value"]),
                                                 asn1Spec=rfc4211.OldCertId())
                except (PyAsn1Error, ValueError, TypeError) as exc:
                    raise DecodeError("malformed oldCertId control") from exc
                if rest:
                    raise DecodeError("trailing bytes after the oldCertId control")
                return bytes(encoder.encode(value["issuer"])), int(value["serialNumber"])
        return None

    @property
    def pop_kind(self) -> str | None:
        """The ProofOfPossession choice (RFC 4211 §4): raVerified, signature, keyEncipherment,
        keyAgreement; None without one."""
        popo = self._message["popo"]
        return str(popo.getName()) if popo.isValue else None

    @property
    def cert_req_id(self) -> int:
        return int(self._message["certReq"]["certReqId"])

    @property
    def view(self) -> x509.CertificateSigningRequest:
        if self._view is None:
            raise DecodeError("the certificate template names no public key")
        return self._view

    @property
    def subject(self) -> x509.Name:
        return self.view.subject

    @property
    def extensions(self) -> x509.Extensions:
        if self.template_problem is not None:
            raise DecodeError(self.template_problem)
        return self.view.extensions

    def public_key(self) -> Any:
        return self.view.public_key()

    def public_bytes(self, encoding: serialization.Encoding) -> bytes:
        return self.der

    @property
    def is_signature_valid(self) -> bool:
        """RFC 4211 §4.1: the POPOSigningKey signature over DER(certReq) by the new key."""
        popo = self._message["popo"]
        if self.central_keygen or not popo.isValue or popo.getName() != "signature":
            return False
        signing = popo["signature"]
        if signing["poposkInput"].isValue:
            return False  # only allowed when the template lacks subject or key (§4.1 (3))
        data = self._cert_req
        try:
            algorithm = signing["algorithmIdentifier"]
            parameters = (bytes(algorithm["parameters"]) if algorithm["parameters"].isValue
                          else None)
            verify_signature(self.public_key(), str(algorithm["algorithm"]),
                             signing["signature"].asOctets(), data, parameters)
        except SignatureCheckError:
            return False
        return True


def _template_view(template: Any, template_der: bytes,
                   spki: bytes | None = None) -> x509.CertificateSigningRequest:
    """The template as a CSR; `spki` (DER) stands for a key the template does not carry."""
    fields = _fields(template_der)  # CertTemplate (§5): [5] subject, [6] key, [9] extensions
    subject = (_first_child(fields[0xA5]) if template["subject"].isValue
               else tlv(SEQUENCE, b""))
    attributes = b""
    if template["extensions"].isValue:
        extensions = _untagged(fields[0xA9])
        attributes = tlv(SEQUENCE, _EXTENSION_REQUEST + tlv(SET, extensions))
    key = spki if spki is not None else _untagged(fields[0xA6])
    info = tlv(SEQUENCE, _VERSION_1 + subject + key + tlv(ATTRIBUTES, attributes))
    try:
        view = x509.load_der_x509_csr(tlv(SEQUENCE, info + _UNUSED_SIGNATURE))
        view.public_key()
        view.subject.rfc4514_string()
    except MALFORMED as exc:  # also UnsupportedAlgorithm: a key on an unknown curve
        raise DecodeError(f"malformed certificate template: {short_reason(exc)}") from exc
    return view


def _first_child(der: bytes, index: int = 0) -> bytes:
    """The `index`-th element inside the constructed element `der`."""
    _, start, end = read_tlv(der, 0)
    elements = [der[s:e] for _, s, e in children(der, start, end)]
    return elements[index]


def _fields(template: bytes) -> dict[int, bytes]:
    """The CertTemplate's elements by tag (each tag occurs once: pyasn1 checked it)."""
    _, start, end = read_tlv(template, 0)
    return {tag: template[s:e] for tag, s, e in children(template, start, end)}


@lru_cache(maxsize=64)
def decode_crmf_request(der: bytes) -> CRMFRequest:
    """Cached: one CMP request is read by the codec, the enrollment method and issuance."""
    return CRMFRequest(der)


def _untagged(der: bytes) -> bytes:
    """An IMPLICIT [n] SEQUENCE of the template as the plain SEQUENCE (X.690 §8.14)."""
    return bytes((SEQUENCE,)) + der[1:]
