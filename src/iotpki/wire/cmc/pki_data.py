"""PKIData, the body of a Full PKI Request (RFC 5272 §3.2.1), and the controls iotpki reads.

    PKIData ::= SEQUENCE { controlSequence SEQUENCE OF TaggedAttribute,
                           reqSequence SEQUENCE OF TaggedRequest,
                           cmsSequence SEQUENCE OF TaggedContentInfo,
                           otherMsgSequence SEQUENCE OF OtherMsg }

- §3.2.1.2 TaggedAttribute: bodyPartID, attrType, attrValues (one value per control here).
- §3.2.1.3 TaggedRequest: tcr (PKCS #10, §3.2.1.3.1) or crm (CRMF CertReqMsg, whose
  certReqId is its bodyPartID, §3.2.1.3.2); orm (other request formats) is refused.
- §3.2.1: every bodyPartID of a PKIData is unique, and 0 names the PKIData itself (never
  an element of it).
- The request bytes are kept exactly as received (a PKCS #10 signature, a CRMF POP and
  the identity proof of §6.2 are computed over them).

Control values (§6): identification (§6.2.3, UTF8String), identityProofV2 (§6.2.1) and
identityProof (§6.2.2), transactionId (§6.6, INTEGER), senderNonce (§6.6, OCTET STRING),
queryPending (§6.13, OCTET STRING), revokeRequest (§6.11).

The encoders (`encode_pki_data`, `control`, `tcr`, `crm`) are the client side, used by
tests and tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, univ
from pyasn1_alt_modules import rfc6402

import iotpki.wire.asn1_cost  # noqa: F401  (cheap pyasn1 error text for hostile input)
from iotpki.wire.cmp.tlv import check_tlv_tree
from iotpki.wire.decoding import MALFORMED, short_reason
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, children, object_identifier, read_tlv, tlv
from iotpki.wire.errors import DecodeError

_ID_CMC = "1.3.6.1.5.5.7.7"
ID_CCT_PKI_DATA = "1.3.6.1.5.5.7.12.2"
ID_CCT_PKI_RESPONSE = "1.3.6.1.5.5.7.12.3"
STATUS_INFO_V2 = f"{_ID_CMC}.25"
IDENTIFICATION = f"{_ID_CMC}.2"
IDENTITY_PROOF = f"{_ID_CMC}.3"
IDENTITY_PROOF_V2 = f"{_ID_CMC}.34"
TRANSACTION_ID = f"{_ID_CMC}.5"
SENDER_NONCE = f"{_ID_CMC}.6"
RECIPIENT_NONCE = f"{_ID_CMC}.7"
ADD_EXTENSIONS = f"{_ID_CMC}.8"
REVOKE_REQUEST = f"{_ID_CMC}.17"
QUERY_PENDING = f"{_ID_CMC}.21"
MAX_BODY_PART_ID = 4294967295
SET = 0x31
TCR, CRM = 0xA0, 0xA1


@dataclass(frozen=True)
class Control:
    body_part_id: int
    type: str  # attrType, dotted
    value: bytes  # DER of its single AttributeValue


@dataclass(frozen=True)
class TaggedRequest:
    body_part_id: int
    kind: str  # "pkcs10" or "crmf"
    der: bytes  # CertificationRequest, or CertReqMsg, as received


@dataclass(frozen=True)
class PKIData:
    controls: tuple[Control, ...]
    requests: tuple[TaggedRequest, ...]
    req_sequence: bytes  # reqSequence with its tag and length, as received (§6.2.1)
    cms_count: int
    other_count: int

    def control(self, kind: str) -> Control | None:
        """The control of that type; `DecodeError` if it appears more than once."""
        found = [c for c in self.controls if c.type == kind]
        if len(found) > 1:
            raise DecodeError(f"control {kind} appears more than once")
        return found[0] if found else None


@dataclass(frozen=True)
class IdentityProof:
    hash_algorithm: str  # proofAlgID (SHA-1 for the version 1 control)
    mac_algorithm: str  # macAlgId (HMAC-SHA1 for version 1)
    witness: bytes


@dataclass(frozen=True)
class RevokeRequest:
    issuer: bytes  # DER Name
    serial: int
    reason: int  # CRLReason
    invalidity_date: datetime | None
    has_passphrase: bool
    comment: str | None


def decode_pki_data(der: bytes) -> PKIData:
    check_tlv_tree(der)
    try:
        value, rest = decoder.decode(der, asn1Spec=rfc6402.PKIData())
    except MALFORMED as exc:
        raise DecodeError(f"malformed PKIData: {short_reason(exc)}") from exc
    if rest:
        raise DecodeError("trailing bytes after the PKIData")
    parts = _elements(der)
    if len(parts) != 4:
        raise DecodeError("a PKIData has four sequences")
    controls = tuple(Control(int(a["bodyPartID"]), str(a["attrType"]), _one(a))
                     for a in value["controlSequence"])
    requests = tuple(_request(raw) for raw in _elements(parts[1]))
    ids = [c.body_part_id for c in controls] + [r.body_part_id for r in requests] + [
        int(c["bodyPartID"]) for c in value["cmsSequence"]] + [
        int(o["bodyPartID"]) for o in value["otherMsgSequence"]]
    if 0 in ids:
        raise DecodeError("RFC 5272 §3.2.1: bodyPartID 0 names the PKIData itself")
    if len(set(ids)) != len(ids):
        raise DecodeError("RFC 5272 §3.2.1: bodyPartIDs are unique within a PKIData")
    return PKIData(controls, requests, parts[1], len(value["cmsSequence"]),
                   len(value["otherMsgSequence"]))


def _one(attribute: Any) -> bytes:
    values = attribute["attrValues"]
    if len(values) != 1:
        raise DecodeError(f"control {attribute['attrType']} must have exactly one value")
    return bytes(values[0])


def _elements(der: bytes) -> list[bytes]:
    _, start, end = read_tlv(der, 0)
    return [der[s:e] for _, s, e in children(der, start, end)]


def _request(raw: bytes) -> TaggedRequest:
    tag = raw[0]
    if tag == TCR:  # [0] IMPLICIT TaggedCertificationRequest: bodyPartID, request
        body_part_id, request = _elements(raw)
        return TaggedRequest(_integer(body_part_id), "pkcs10", request)
    if tag == CRM:  # [1] IMPLICIT CertReqMsg; certReq.certReqId is the bodyPartID
        message = bytes((SEQUENCE,)) + raw[1:]
        cert_req_id = _elements(_elements(message)[0])[0]
        return TaggedRequest(_integer(cert_req_id), "crmf", message)
    raise DecodeError("RFC 5272 §3.2.1.3: only PKCS #10 (tcr) and CRMF (crm) requests are "
                      "served, not other request formats (orm)")


def _integer(der: bytes) -> int:
    value, _ = decoder.decode(der, asn1Spec=univ.Integer())
    number = int(value)
    if not 0 <= number <= MAX_BODY_PART_ID:
        raise DecodeError("bodyPartID out of range")
    return number


# -- control values -------------------------------------------------------------------------

def _decode(value: bytes, spec: Any, what: str) -> Any:
    try:
        decoded, rest = decoder.decode(value, asn1Spec=spec)
    except MALFORMED as exc:
        raise DecodeError(f"malformed {what} control: {short_reason(exc)}") from exc
    if rest:
        raise DecodeError(f"trailing bytes in the {what} control")
    return decoded


def decode_identification(value: bytes) -> str:
    return str(_decode(value, char.UTF8String(), "identification"))


def decode_identity_proof_v2(value: bytes) -> IdentityProof:
    proof = _decode(value, rfc6402.IdentifyProofV2(), "identityProofV2")
    return IdentityProof(str(proof["proofAlgID"]["algorithm"]),
                         str(proof["macAlgId"]["algorithm"]), bytes(proof["witness"]))


SHA1, HMAC_SHA1 = "1.3.14.3.2.26", "1.3.6.1.5.5.8.1.2"


def decode_identity_proof(value: bytes) -> IdentityProof:
    """Version 1 (§6.2.2): SHA-1 of the secret, HMAC-SHA1 witness."""
    return IdentityProof(SHA1, HMAC_SHA1, bytes(_decode(value, univ.OctetString(),
                                                         "identityProof")))


def decode_transaction_id(value: bytes) -> int:
    return int(_decode(value, univ.Integer(), "transactionId"))


def decode_nonce(value: bytes) -> bytes:
    return bytes(_decode(value, univ.OctetString(), "nonce"))


def decode_query_pending(value: bytes) -> bytes:
    return bytes(_decode(value, univ.OctetString(), "queryPending"))


def decode_revoke_request(value: bytes) -> RevokeRequest:
    request = _decode(value, rfc6402.RevokeRequest(), "revokeRequest")
    invalidity = request["invalidityDate"]
    moment = invalidity.asDateTime if invalidity.isValue else None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return RevokeRequest(bytes(encoder.encode(request["issuerName"])),
                         int(request["serialNumber"]), int(request["reason"]), moment,
                         request["passphrase"].isValue,
                         str(request["comment"]) if request["comment"].isValue else None)


# -- the client side ------------------------------------------------------------------------

def integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return tlv(INTEGER, body)


def control(body_part_id: int, kind: str, value: bytes) -> bytes:
    """A TaggedAttribute (§3.2.1.2) with one value (DER)."""
    return tlv(SEQUENCE, integer(body_part_id) + object_identifier(kind) + tlv(SET, value))


def tcr(body_part_id: int, csr_der: bytes) -> bytes:
    return tlv(TCR, integer(body_part_id) + csr_der)


def crm(cert_req_msg_der: bytes) -> bytes:
    return bytes((CRM,)) + cert_req_msg_der[1:]


def encode_pki_data(controls: Sequence[bytes], requests: Sequence[bytes]) -> bytes:
    return tlv(SEQUENCE, tlv(SEQUENCE, b"".join(controls)) + tlv(SEQUENCE, b"".join(requests))
               + tlv(SEQUENCE, b"") + tlv(SEQUENCE, b""))


def identification(name: str) -> bytes:
    return tlv(0x0C, name.encode())


def octet_string(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def identity_proof_v2(hash_algorithm: str, mac_algorithm: str, witness: bytes) -> bytes:
    return tlv(SEQUENCE, tlv(SEQUENCE, object_identifier(hash_algorithm))
               + tlv(SEQUENCE, object_identifier(mac_algorithm)) + octet_string(witness))


def revoke_request(issuer_der: bytes, serial: int, reason: int) -> bytes:
    return tlv(SEQUENCE, issuer_der + integer(serial) + tlv(0x0A, bytes((reason,))))
