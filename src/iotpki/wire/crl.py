"""CRL encoding in one pass (RFC 5280 §5.1).

`cryptography` builds the CRL frame (issuer, thisUpdate, nextUpdate, CRL extensions) with
no entries; `splice_revoked` inserts the revokedCertificates list (§5.1.2.6) encoded here
in a single linear pass, and the TBSCertList is signed again with the issuer's key. That
keeps a CRL of a million entries to a few seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
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
    serial_hex: str  # lowercase, no leading zeros
    revocation_date: int  # POSIX seconds, UTC
    reason: str | None  # RFC 5280 §5.3.1 name; None or "unspecified" leaves the extension out
    invalidity_date: int | None = None  # POSIX seconds (§5.3.2)


def _reason_extension(reason: str) -> bytes:
    value = tlv(ENUMERATED, bytes((REASON_CODES[reason],)))
    return tlv(SEQUENCE, _REASON_OID + tlv(OCTET_STRING, value))


_REASON_EXTENSIONS = {name: _reason_extension(name) for name in REASON_CODES}
_REASON_EXTENSIONS["unspecified"] = b""  # §5.3.1: SHOULD be absent rather than written
_DAY = 86_400
_UTC_TIME_END = 2_524_608_000  # 2050-01-01T00:00:00Z: §5.1.2.4 switches to GeneralizedTime


@functools.cache
def _times_of_day() -> list[bytes]:
    """`HHMMSSZ` for every second of a day, made once per process: building it (60 ms)
    for every CRL would dominate the many small CRLs of CRL shards."""
    return [b"%02d%02d%02dZ" % (s // 3600, s // 60 % 60, s % 60) for s in range(_DAY)]


class _TimeEncoder:
    """Encodes POSIX seconds as X.509 Time quickly: the date part is cached per day and the
    time of day comes from a table, since CRLs hold up to millions of entries."""

    def __init__(self) -> None:
        self._days: dict[int, bytes] = {}
        self._clock = _times_of_day()

    def utc_time(self, seconds: int) -> bytes:
        day, second = divmod(seconds, _DAY)
        prefix = self._days.get(day)
        if prefix is None:
            date = datetime.fromtimestamp(day * _DAY, UTC)
            prefix = self._days[day] = b"\x17\x0d" + date.strftime("%y%m%d").encode()
        return prefix + self._clock[second]

    def x509_time(self, seconds: int) -> bytes:
        if seconds < _UTC_TIME_END:
            return self.utc_time(seconds)
        return generalized_time(datetime.fromtimestamp(seconds, UTC))


_SHORT = [bytes((SEQUENCE, n)) for n in range(128)]  # SEQUENCE header, short length form


def _sequence(body: bytes) -> bytes:
    return _SHORT[len(body)] + body if len(body) < 128 else tlv(SEQUENCE, body)


def _invalidity(seconds: int) -> bytes:
    """§5.3.2 invalidityDate extension, always GeneralizedTime."""
    value = generalized_time(datetime.fromtimestamp(seconds, UTC))
    return tlv(SEQUENCE, _INVALIDITY_OID + tlv(OCTET_STRING, value))


def encode_revoked_certificates(entries: Iterable[RevokedEntry]) -> tuple[bytes, int]:
    """(the DER revokedCertificates SEQUENCE, or b"" when empty; the number of entries).

    The hot loop of a large CRL: it avoids function calls where it can."""
    parts: list[bytes] = []
    append = parts.append
    reasons = _REASON_EXTENSIONS
    when = _TimeEncoder().x509_time
    short = _SHORT
    for serial_hex, revoked, reason, invalidity in entries:
        extensions = reasons[reason] if reason is not None else b""
        if invalidity is not None:
            extensions += _invalidity(invalidity)
        body = integer_from_hex(serial_hex) + when(revoked)
        if extensions:
            body += _sequence(extensions)
        append(short[len(body)] + body if len(body) < 128 else tlv(SEQUENCE, body))
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
