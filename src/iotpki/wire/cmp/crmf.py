"""CRMF certificate requests (RFC 4211) as certification requests of the issuance path.

A `CertReqMsg` carries a certificate template (§5) and a proof of possession (§4.1): a
signature by the new key over the DER of `certReq` (RFC 9483 §4.1.1 requires the
signature form, without `poposkInput`). `CRMFRequest` offers what the core reads from a
PKCS #10 request (subject, public key, extensions, `is_signature_valid`), so an ir, cr or
kur takes the same single issuance path as a CSR.

`cryptography` parses names and extensions only inside certificates and CSRs: the
template's subject, key and extensions are wrapped in a CertificationRequestInfo with an
empty signature (never trusted: possession is checked here, on the CRMF signature).

The common shape of a CertReqMsg is read by the DER walker (`wire.cmp.crmf_der`, issue 21:
pyasn1 took most of a cr's decoding time); any other shape by pyasn1, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc4211

from iotpki.wire.cmp.algorithms import SignatureCheckError, verify_signature
from iotpki.wire.cmp.crmf_der import CertReqMsgFields, NotReadError, read_cert_req_msg
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
    """One decoded `CertReqMsg`; `der` is exactly what the client sent.

    `tree_checked`: the caller has run `check_tlv_tree` over bytes that contain `der`
    (`wire.cmp.messages.split_message` walks the whole PKIMessage), so it is not run twice.
    """

    def __init__(self, der: bytes, *, tree_checked: bool = False) -> None:
        if not tree_checked:
            check_tlv_tree(der)
        try:  # the common shape by the DER walker (issue 21), anything else by pyasn1
            fields = read_cert_req_msg(der)
        except NotReadError:
            fields = _pyasn1_fields(der)
        self.der = der
        self._fields = fields
        self._template: Any = None
        self.central_keygen = fields.central_keygen
        # The DER as received, sliced (pyasn1 takes as long to re-encode as to decode; DER
        # is canonical, so a slice of a well-formed request is its re-encoding).
        self._cert_req = fields.cert_req
        self.template_der = fields.template
        self._view = None if self.central_keygen else _template_view(self.template_der)
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
    def template(self) -> Any:
        """The certTemplate decoded by pyasn1 (RFC 4211 §5), when first asked (central key
        generation reads its publicKey algorithm); both readers accepted the message."""
        if self._template is None:
            try:
                self._template = _decode(self.template_der, rfc4211.CertTemplate())
            except (PyAsn1Error, ValueError, TypeError) as exc:
                raise DecodeError(f"malformed certificate template "
                                  f"({exc.__class__.__name__})") from exc
        return self._template

    @property
    def old_cert_id(self) -> tuple[bytes, int] | None:
        """The oldCertId control (RFC 4211 §6.5, RFC 9483 §4.1.3): (DER of the issuer's
        GeneralName, serial number), or None without one."""
        for oid, value_der in self._fields.controls:
            if oid == _OLD_CERT_ID:
                try:
                    value, rest = decoder.decode(value_der, asn1Spec=rfc4211.OldCertId())
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
        return self._fields.pop_kind

    @property
    def cert_req_id(self) -> int:
        return self._fields.cert_req_id

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
        fields = self._fields
        if self.central_keygen or fields.pop_kind != "signature":
            return False
        if fields.pop_input:
            return False  # only allowed when the template lacks subject or key (§4.1 (3))
        assert fields.pop_algorithm is not None and fields.pop_signature is not None
        try:
            verify_signature(self.public_key(), fields.pop_algorithm, fields.pop_signature,
                             self._cert_req, fields.pop_parameters)
        except SignatureCheckError:
            return False
        return True


def _decode(der: bytes, spec: Any) -> Any:
    value, rest = decoder.decode(der, asn1Spec=spec)
    if rest:
        raise DecodeError("trailing bytes after the CRMF request")
    return value


def _pyasn1_fields(der: bytes) -> CertReqMsgFields:
    """What `read_cert_req_msg` reads, decoded by pyasn1 for any shape (the TLV tree
    checked: pyasn1 must not see garbage)."""
    try:
        return _fields_of(der, _decode(der, rfc4211.CertReqMsg()))
    except (PyAsn1Error, ValueError, TypeError) as exc:  # ValueError: len() of a BIT
        # STRING 03 01 01 (fuzzer)
        raise DecodeError(f"malformed CRMF request ({exc.__class__.__name__})") from exc


def _fields_of(der: bytes, message: Any) -> CertReqMsgFields:
    request = message["certReq"]
    key = request["certTemplate"]["publicKey"]
    controls = request["controls"]
    cert_req = _first_child(der)
    popo = message["popo"]
    pop: dict[str, Any] = {"pop_kind": str(popo.getName()) if popo.isValue else None}
    if pop["pop_kind"] == "signature":
        signing = popo["signature"]
        algorithm = signing["algorithmIdentifier"]
        pop.update(pop_input=bool(signing["poposkInput"].isValue),
                   pop_algorithm=str(algorithm["algorithm"]),
                   pop_parameters=(bytes(algorithm["parameters"])
                                   if algorithm["parameters"].isValue else None),
                   pop_signature=bytes(signing["signature"].asOctets()))
    return CertReqMsgFields(
        cert_req=cert_req, template=_first_child(cert_req, 1),
        cert_req_id=int(request["certReqId"]),
        # RFC 9483 §4.1.6: no key, or an algorithm with an empty key, asks the server for one.
        central_keygen=not key.isValue or not len(key["subjectPublicKey"]),
        controls=tuple((str(c["type"]), bytes(c["value"]))
                       for c in (controls if controls.isValue else ())),
        **pop)


def _template_view(template_der: bytes,
                   spki: bytes | None = None) -> x509.CertificateSigningRequest:
    """The template as a CSR; `spki` (DER) stands for a key the template does not carry."""
    fields = _fields(template_der)  # CertTemplate (§5): [5] subject, [6] key, [9] extensions
    subject = _first_child(fields[0xA5]) if 0xA5 in fields else tlv(SEQUENCE, b"")
    attributes = b""
    if 0xA9 in fields:
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


def decode_crmf_request(der: bytes, tree_checked: bool = False) -> CRMFRequest:
    """Cached: one CMP request is read by the codec (`tree_checked`), the enrollment method
    and issuance (through `wire.csr`, unchecked): all three find the same entry."""
    return _decoded(_CacheKey(der, tree_checked))


@dataclass(frozen=True)
class _CacheKey:
    """The DER alone is the key: a request in the cache has passed the tree check, whoever
    asks later; `tree_checked` only tells a first decoding whether to run it."""

    der: bytes
    tree_checked: bool = field(compare=False)


@lru_cache(maxsize=64)
def _decoded(key: _CacheKey) -> CRMFRequest:
    return CRMFRequest(key.der, tree_checked=key.tree_checked)


def _untagged(der: bytes) -> bytes:
    """An IMPLICIT [n] SEQUENCE of the template as the plain SEQUENCE (X.690 §8.14)."""
    return bytes((SEQUENCE,)) + der[1:]
