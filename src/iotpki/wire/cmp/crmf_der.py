"""A CertReqMsg (RFC 4211 §3) read with the DER walker, for the common shape: pyasn1 took
most of a CMP cr's decoding time for the CRMF part (issue 21).

Read here: certReq { certReqId INTEGER, certTemplate with [3] issuer, [5] subject,
[6] publicKey and [9] extensions only (each optional, in order; §5), controls of (OID, ANY) pairs (§6) },
then an optional ProofOfPossession that is raVerified or a POPOSigningKey without
poposkInput (§4.1), and no regInfo. Every value is checked as strictly as pyasn1 checks it
or more: minimal INTEGERs, well-formed OBJECT IDENTIFIERs, primitive OCTET and BIT STRINGs
of whole octets, critical TRUE only. Anything else is `NotReadError`, and `wire.cmp.crmf`
decodes the message with pyasn1, which accepts or refuses it as before.
tests/cmp/test_wire_crmf_der.py compares both readers.

The caller has checked the TLV tree (`wire.cmp.tlv.check_tlv_tree`): depth, definite
lengths and single-byte tags throughout, which pyasn1's path requires as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from iotpki.wire.cmp.header_der import NotReadError, _algorithm, _any, _explicit, _oid
from iotpki.wire.der import BIT_STRING, INTEGER, OCTET_STRING, SEQUENCE, children, read_tlv
from iotpki.wire.errors import DecodeError

SET, BOOLEAN = 0x31, 0x01
# CertTemplate fields read here (RFC 4211 §5, IMPLICIT TAGS; Name is a CHOICE: [5] EXPLICIT)
ISSUER, SUBJECT, PUBLIC_KEY, EXTENSIONS = 0xA3, 0xA5, 0xA6, 0xA9
# ProofOfPossession choices read here (RFC 4211 §4): raVerified [0] NULL, signature [1]
RA_VERIFIED, SIGNATURE = 0x80, 0xA1
_TRUE = b"\x01\x01\xff"
# (choice name, signature algorithm OID, DER of its parameters, signature octets)
_POP = tuple[str | None, str | None, bytes | None, bytes | None]

__all__ = ["CertReqMsgFields", "NotReadError", "read_cert_req_msg"]


@dataclass(frozen=True)
class CertReqMsgFields:
    """What `wire.cmp.crmf.CRMFRequest` reads from a CertReqMsg, by either reader."""

    cert_req: bytes  # DER of certReq as received: what the POP signature covers (§4.1)
    template: bytes  # DER of certTemplate as received
    cert_req_id: int
    # RFC 9483 §4.1.6: no publicKey, or one with an empty subjectPublicKey
    central_keygen: bool
    controls: tuple[tuple[str, bytes], ...]  # (type OID, DER of the value)
    pop_kind: str | None  # the ProofOfPossession choice name, None without one
    pop_input: bool = False  # POPOSigningKey with poposkInput
    pop_algorithm: str | None = None  # POPOSigningKey: OID
    pop_parameters: bytes | None = None  # DER of the algorithm's parameters
    pop_signature: bytes | None = None


def read_cert_req_msg(der: bytes) -> CertReqMsgFields:
    """The fields of a CertReqMsg's DER, or `NotReadError`."""
    try:
        return _read(der)
    except (DecodeError, ValueError, IndexError) as exc:
        raise NotReadError(str(exc)) from exc


def _read(der: bytes) -> CertReqMsgFields:
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise NotReadError("not one SEQUENCE")
    elements = _children(der, start, end)
    if not 1 <= len(elements) <= 2 or elements[0][0] != SEQUENCE:
        raise NotReadError("certReq and an optional popo, no regInfo")
    cert_req = der[elements[0][1]:elements[0][2]]
    pop: _POP = (None, None, None, None)
    if len(elements) == 2:
        pop = _popo(der[elements[1][1]:elements[1][2]])
    cert_req_id, template, central_keygen, controls = _cert_request(cert_req)
    return CertReqMsgFields(cert_req, template, cert_req_id, central_keygen, controls,
                            pop_kind=pop[0], pop_algorithm=pop[1], pop_parameters=pop[2],
                            pop_signature=pop[3])


def _cert_request(der: bytes) -> tuple[int, bytes, bool, tuple[tuple[str, bytes], ...]]:
    """CertRequest (§5): (certReqId, DER of certTemplate, central keygen, controls)."""
    _, start, end = read_tlv(der, 0)
    elements = _children(der, start, end)
    if not 2 <= len(elements) <= 3 or elements[1][0] != SEQUENCE:
        raise NotReadError("certReqId, certTemplate, optional controls")
    template = der[elements[1][1]:elements[1][2]]
    controls: tuple[tuple[str, bytes], ...] = ()
    if len(elements) == 3:
        controls = _controls(der[elements[2][1]:elements[2][2]])
    return (_integer(der[elements[0][1]:elements[0][2]]), template, _template(template),
            controls)


def _template(der: bytes) -> bool:
    """Check the CertTemplate's fields; True when it asks for central key generation."""
    _, start, end = read_tlv(der, 0)
    key_bits: bytes | None = None
    previous = 0
    for tag, element_start, element_end in _children(der, start, end):
        if tag <= previous:
            raise NotReadError("template fields out of order")
        previous = tag
        element = der[element_start:element_end]
        if tag in (ISSUER, SUBJECT):  # issuer: `openssl cmp` kur names the old one
            _name(_explicit(element, 0, len(element)))
        elif tag == PUBLIC_KEY:
            key_bits = _public_key(element)
        elif tag == EXTENSIONS:
            _extensions(element)
        else:  # version, serialNumber, signingAlg, validity, UIDs: pyasn1's
            raise NotReadError(f"template field {tag:#x}")
    return key_bits is None or not key_bits


def _name(der: bytes) -> None:
    """Name: an RDNSequence of non-empty SETs of AttributeTypeAndValue (RFC 5280 §4.1.2.4)."""
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE:
        raise NotReadError("not an RDNSequence")
    for rdn_tag, rdn_start, rdn_end in _children(der, start, end):
        _, set_start, _ = read_tlv(der, rdn_start)
        if rdn_tag != SET or set_start == rdn_end:
            raise NotReadError("not a non-empty SET")
        for pair_tag, pair_start, pair_end in _children(der, set_start, rdn_end):
            _, value_start, _ = read_tlv(der, pair_start)
            pair = _children(der, value_start, pair_end)
            if pair_tag != SEQUENCE or len(pair) != 2:
                raise NotReadError("not an AttributeTypeAndValue")
            _oid(der, pair[0])
            _any(der[pair[1][1]:pair[1][2]])


def _public_key(der: bytes) -> bytes:
    """[6] IMPLICIT SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): the subjectPublicKey octets."""
    _, start, end = read_tlv(der, 0)
    parts = _children(der, start, end)
    if len(parts) != 2:
        raise NotReadError("not a SubjectPublicKeyInfo")
    _algorithm(der[parts[0][1]:parts[0][2]])
    return _bits(der[parts[1][1]:parts[1][2]])


def _extensions(der: bytes) -> None:
    """[9] IMPLICIT Extensions, SIZE (1..MAX) of {OID, critical TRUE or absent, OCTET
    STRING} (RFC 5280 §4.1.2.9); an encoded DEFAULT FALSE is left to pyasn1."""
    _, start, end = read_tlv(der, 0)
    if start == end:
        raise NotReadError("empty extensions")
    for tag, element_start, element_end in _children(der, start, end):
        _, value_start, _ = read_tlv(der, element_start)
        parts = _children(der, value_start, element_end)
        if tag != SEQUENCE or len(parts) not in (2, 3):
            raise NotReadError("not an Extension")
        _oid(der, parts[0])
        if len(parts) == 3 and der[parts[1][1]:parts[1][2]] != _TRUE:
            raise NotReadError("critical is not TRUE")
        if parts[-1][0] != OCTET_STRING:
            raise NotReadError("extnValue is not a primitive OCTET STRING")


def _controls(der: bytes) -> tuple[tuple[str, bytes], ...]:
    """Controls (§6): SEQUENCE SIZE (1..MAX) OF AttributeTypeAndValue {OID, ANY}."""
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE or start == end:
        raise NotReadError("not a non-empty SEQUENCE of controls")
    controls = []
    for tag, element_start, element_end in _children(der, start, end):
        if tag != SEQUENCE:
            raise NotReadError("not an AttributeTypeAndValue")
        oid, value = _algorithm(der[element_start:element_end])  # the same shape
        if value is None:
            raise NotReadError("a control without a value")
        controls.append((oid, value))
    return tuple(controls)


def _popo(der: bytes) -> _POP:
    """ProofOfPossession (§4): raVerified, or signature without poposkInput (§4.1)."""
    if der == bytes((RA_VERIFIED, 0)):
        return "raVerified", None, None, None
    if der[0] != SIGNATURE:
        raise NotReadError(f"proof of possession {der[0]:#x}")
    _, start, end = read_tlv(der, 0)
    parts = _children(der, start, end)
    if len(parts) != 2 or parts[0][0] != SEQUENCE:
        raise NotReadError("POPOSigningKey with poposkInput, or malformed")
    algorithm, parameters = _algorithm(der[parts[0][1]:parts[0][2]])
    return "signature", algorithm, parameters, _bits(der[parts[1][1]:parts[1][2]])


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """`wire.der.children`, and the last one ends where its parent does (`children` lets
    an element run past it, pyasn1 does not)."""
    elements = list(children(der, start, end))
    if elements and elements[-1][2] != end:
        raise NotReadError("an element runs past its parent")
    return elements


def _bits(der: bytes) -> bytes:
    """A primitive BIT STRING of whole octets: its octets."""
    tag, start, end = read_tlv(der, 0)
    if tag != BIT_STRING or start == end or der[start] != 0:
        raise NotReadError("not a BIT STRING of whole octets")
    return der[start + 1:end]


def _integer(der: bytes) -> int:
    """A minimally encoded primitive INTEGER (X.690 §8.3.2)."""
    tag, start, end = read_tlv(der, 0)
    value = der[start:end]
    if tag != INTEGER or not value or (len(value) > 1 and (
            (value[0] == 0 and not value[1] & 0x80) or (value[0] == 0xFF and value[1] & 0x80))):
        raise NotReadError("not a minimal INTEGER")
    return int.from_bytes(value, "big", signed=True)
