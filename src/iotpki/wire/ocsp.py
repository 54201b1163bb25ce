"""OCSP codecs beyond what `cryptography` offers (RFC 6960 §4.1, §4.2, §4.4.1; RFC 8954).

`cryptography` decodes requests and builds responses for one certificate only. RFC 6960
§4.1.1 lets a request name several (requestList); `decode_ocsp_request` decodes those
with pyasn1, and `merge_responses` joins single-certificate responses into one
BasicOCSPResponse (§4.2.1) signed again by the responder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc6960

from iotpki.wire.decoding import MALFORMED, short_reason
from iotpki.wire.der import BIT_STRING, OCTET_STRING, SEQUENCE, children, read_tlv, tlv
from iotpki.wire.errors import DecodeError
from iotpki.wire.signature import sign_data

HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_HASH_OIDS = {
    "1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512",
}
_NONCE_OID = "1.3.6.1.5.5.7.48.1.2"  # id-pkix-ocsp-nonce, RFC 6960 §4.4.1
_MAX_NONCE = 128  # RFC 8954 §2.1: at most 32 octets are needed; refuse absurd ones


class CertID(NamedTuple):
    hash_algorithm: str  # a key of HASHES
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


class OCSPRequestInfo(NamedTuple):
    cert_ids: tuple[CertID, ...]
    nonce: bytes | None


def decode_ocsp_request(der: bytes) -> OCSPRequestInfo:
    """The certificates asked about and the nonce; raise `DecodeError` if malformed."""
    try:
        request = ocsp.load_der_ocsp_request(der)
        name = request.hash_algorithm.name
        nonce = next((e.value.nonce for e in request.extensions
                      if isinstance(e.value, x509.OCSPNonce)), None)
    except NotImplementedError:  # several requests in one: pyasn1
        return _decode_with_pyasn1(der)
    except MALFORMED as exc:
        raise DecodeError(f"malformed OCSP request: {short_reason(exc)}") from exc
    if name not in HASHES:
        raise DecodeError(f"unsupported CertID hash {name}")
    cert_id = _checked(CertID(name, request.issuer_name_hash, request.issuer_key_hash,
                              request.serial_number))
    return OCSPRequestInfo((cert_id,), _checked_nonce(nonce))


def _checked_nonce(nonce: bytes | None) -> bytes | None:
    if nonce is not None and not 0 < len(nonce) <= _MAX_NONCE:
        raise DecodeError("OCSP nonce must be 1 to 128 octets")
    return nonce


def _decode_with_pyasn1(der: bytes) -> OCSPRequestInfo:
    try:
        request, rest = der_decoder.decode(der, asn1Spec=rfc6960.OCSPRequest())
        if rest:
            raise DecodeError("trailing bytes after the OCSP request")
        tbs = request["tbsRequest"]
        cert_ids = tuple(_cert_id(item["reqCert"]) for item in tbs["requestList"])
        nonce = _pyasn1_nonce(tbs)
    except MALFORMED as exc:
        raise DecodeError(f"malformed OCSP request: {short_reason(exc)}") from exc
    if not cert_ids:
        raise DecodeError("OCSP request names no certificate")
    return OCSPRequestInfo(cert_ids, _checked_nonce(nonce))


def _cert_id(value: Any) -> CertID:
    oid = str(value["hashAlgorithm"]["algorithm"])
    if oid not in _HASH_OIDS:
        raise DecodeError(f"unsupported CertID hash {oid}")
    return _checked(CertID(_HASH_OIDS[oid], bytes(value["issuerNameHash"]),
                           bytes(value["issuerKeyHash"]), int(value["serialNumber"])))


def _checked(cert_id: CertID) -> CertID:
    """RFC 5280 §4.1.2.2: a serial number is a positive integer of at most 20 octets; a
    CertID naming anything else cannot name a certificate of ours (malformedRequest)."""
    if not 0 < cert_id.serial < 1 << 160:
        raise DecodeError("CertID serialNumber must be a positive integer of at most 20 octets")
    return cert_id


def _pyasn1_nonce(tbs: Any) -> bytes | None:
    extensions = tbs["requestExtensions"]
    if not extensions.isValue:
        return None
    for extension in extensions:
        if str(extension["extnID"]) == _NONCE_OID:
            inner, _ = der_decoder.decode(bytes(extension["extnValue"]),
                                          asn1Spec=univ.OctetString())
            return bytes(inner)
    return None


def _basic_response(response_der: bytes) -> tuple[bytes, list[bytes]]:
    """(BasicOCSPResponse DER, its elements) from an OCSPResponse with responseBytes."""
    _, start, end = read_tlv(response_der, 0)
    parts = list(children(response_der, start, end))
    _, explicit, _ = read_tlv(response_der, parts[1][1])
    _, rb_start, rb_end = read_tlv(response_der, explicit)
    rb = list(children(response_der, rb_start, rb_end))
    _, basic_start, basic_end = read_tlv(response_der, rb[1][1])
    basic = response_der[basic_start:basic_end]
    _, b_start, b_end = read_tlv(basic, 0)
    return basic, [basic[s:e] for _, s, e in children(basic, b_start, b_end)]


def _single_responses(tbs: bytes) -> tuple[list[bytes], int]:
    """The SingleResponse elements of a ResponseData and the index of its `responses` field."""
    _, start, end = read_tlv(tbs, 0)
    fields = list(children(tbs, start, end))
    index = next(i for i, f in enumerate(fields) if f[0] == SEQUENCE)
    _, r_start, r_end = read_tlv(tbs, fields[index][1])
    return [tbs[s:e] for _, s, e in children(tbs, r_start, r_end)], index


def merge_responses(responses: Sequence[bytes], key: Any,
                    hash_algorithm: hashes.HashAlgorithm | None) -> bytes:
    """One OCSPResponse answering every certificate of `responses` (same responder), signed
    again; the first response gives responderID, producedAt, extensions and certs."""
    if len(responses) == 1:
        return responses[0]
    _, first = _basic_response(responses[0])
    singles = [s for r in responses for s in _single_responses(_basic_response(r)[1][0])[0]]
    tbs = first[0]
    _, start, end = read_tlv(tbs, 0)
    fields = [tbs[s:e] for _, s, e in children(tbs, start, end)]
    _, index = _single_responses(tbs)
    fields[index] = tlv(SEQUENCE, b"".join(singles))
    new_tbs = tlv(SEQUENCE, b"".join(fields))
    signature = tlv(BIT_STRING, b"\x00" + sign_data(key, new_tbs, hash_algorithm))
    basic = tlv(SEQUENCE, new_tbs + first[1] + signature + b"".join(first[3:]))
    response_bytes = tlv(SEQUENCE, _BASIC_OID + tlv(OCTET_STRING, basic))
    return tlv(SEQUENCE, b"\x0a\x01\x00" + tlv(0xA0, response_bytes))


_BASIC_OID = b"\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x01"  # id-pkix-ocsp-basic
