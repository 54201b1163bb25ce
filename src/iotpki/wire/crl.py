"""CRL encoding in one pass (RFC 5280 §5.1).

`cryptography` builds the CRL frame (issuer, thisUpdate, nextUpdate, CRL extensions) with
no entries; `splice_revoked` inserts the revokedCertificates list (§5.1.2.6) encoded here
in a single linear pass, and the TBSCertList is signed again with the issuer's key. That
keeps a CRL of a million entries to a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import hashes

from iotpki.wire.der import (
    BIT_STRING,
    ENUMERATED,
    GENERALIZED_TIME,
    OCTET_STRING,
    SEQUENCE,
    UTC_TIME,
    children,
    generalized_time,
    integer_from_hex,
    read_tlv,
    tlv,
    x509_time,
)
from iotpki.wire.errors import DecodeError
from iotpki.wire.signature import sign_data

# RFC 5280 §5.3.1 CRLReason codes (7 is not used).
REASON_CODES = {
    "unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3,
    "superseded": 4, "cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8,
    "privilegeWithdrawn": 9, "aACompromise": 10,
}
_REASON_OID = b"\x06\x03\x55\x1d\x15"  # id-ce-cRLReasons 2.5.29.21
_INVALIDITY_OID = b"\x06\x03\x55\x1d\x18"  # id-ce-invalidityDate 2.5.29.24
_CRL_EXTENSIONS_TAG = 0xA0


class RevokedEntry(NamedTuple):
    serial_hex: str
    revocation_date: datetime
    reason: str | None  # RFC 5280 §5.3.1 name; None or "unspecified" leaves the extension out
    invalidity_date: datetime | None = None


def _reason_extension(reason: str) -> bytes:
    value = tlv(ENUMERATED, bytes((REASON_CODES[reason],)))
    return tlv(SEQUENCE, _REASON_OID + tlv(OCTET_STRING, value))


_REASON_EXTENSIONS = {name: _reason_extension(name) for name in REASON_CODES}


def encode_revoked_certificates(entries: Iterable[RevokedEntry]) -> tuple[bytes, int]:
    """(the DER revokedCertificates SEQUENCE, or b"" when empty; the number of entries)."""
    parts: list[bytes] = []
    reasons = _REASON_EXTENSIONS
    for serial_hex, revoked, reason, invalidity in entries:
        body = integer_from_hex(serial_hex) + x509_time(revoked)
        extensions = b""
        # RFC 5280 §5.3.1: the reason code unspecified SHOULD be absent rather than written.
        if reason is not None and reason != "unspecified":
            extensions = reasons[reason]
        if invalidity is not None:  # §5.3.2, always GeneralizedTime
            extensions += tlv(SEQUENCE, _INVALIDITY_OID + tlv(
                OCTET_STRING, generalized_time(invalidity)))
        if extensions:
            body += tlv(SEQUENCE, extensions)
        parts.append(tlv(SEQUENCE, body))
    if not parts:
        return b"", 0  # §5.1.2.6: absent when no certificate is revoked
    return tlv(SEQUENCE, b"".join(parts)), len(parts)


def splice_revoked(
    frame_der: bytes, revoked: bytes, key: Any, hash_algorithm: hashes.HashAlgorithm | None
) -> bytes:
    """The CRL `frame_der` (signed, no entries) with `revoked` inserted and signed again."""
    if not revoked:
        return frame_der
    tag, start, end = read_tlv(frame_der, 0)
    outer = list(children(frame_der, start, end))
    if tag != SEQUENCE or len(outer) != 3:
        raise DecodeError("not a CertificateList")
    _, tbs_start, tbs_end = outer[0]
    _, tbs_value, _ = read_tlv(frame_der, tbs_start)
    fields = [frame_der[s:e] for t, s, e in children(frame_der, tbs_value, tbs_end)]
    position = next((i for i, f in enumerate(fields) if f[0] == _CRL_EXTENSIONS_TAG),
                    len(fields))
    if position == 0 or fields[position - 1][0] not in (UTC_TIME, GENERALIZED_TIME):
        raise DecodeError("the frame CRL already lists revoked certificates")
    fields.insert(position, revoked)
    tbs = tlv(SEQUENCE, b"".join(fields))
    signature = sign_data(key, tbs, hash_algorithm)
    algorithm = frame_der[outer[1][1]:outer[1][2]]
    return tlv(SEQUENCE, tbs + algorithm + tlv(BIT_STRING, b"\x00" + signature))
