"""The value of a CRL update retrieval request (RFC 9483 §4.3.4; RFC 9810 §5.3.19.16):

    CRLStatusListValue ::= SEQUENCE SIZE (1..MAX) OF CRLStatus
    CRLStatus ::= SEQUENCE { source CRLSource, thisUpdate Time OPTIONAL }
    CRLSource ::= CHOICE { dpn [0] DistributionPointName, issuer [1] GeneralNames }

Read into plain values: the URIs of a distribution point's fullName, the DER of the
issuer's directory names, and the thisUpdate of the CRL the client already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc9480

import iotpki.wire.asn1_cost  # noqa: F401  (pyasn1 errors must stay cheap)
from iotpki.wire.decoding import MALFORMED
from iotpki.wire.errors import DecodeError

MAX_STATUSES = 64  # sources in one request; a client asks for its few CRLs


@dataclass(frozen=True)
class CRLStatus:
    uris: tuple[str, ...]  # dpn fullName URIs (empty for an issuer source)
    issuers: tuple[bytes, ...]  # DER of each issuer directoryName (empty for a dpn source)
    this_update: datetime | None  # of the CRL the client holds; None: it holds none


def decode_crl_status_list(der: bytes) -> tuple[CRLStatus, ...]:
    """DecodeError for anything but one to MAX_STATUSES well-formed CRLStatus values."""
    try:
        value, rest = decoder.decode(der, asn1Spec=rfc9480.CRLStatusListValue())
        if rest:
            raise DecodeError("trailing bytes after the crlStatusList")
        statuses = tuple(_status(status) for status in value)
    except DecodeError:
        raise
    except MALFORMED as exc:
        raise DecodeError(f"malformed crlStatusList: {exc.__class__.__name__}") from exc
    if not 1 <= len(statuses) <= MAX_STATUSES:
        raise DecodeError(f"a crlStatusList holds 1 to {MAX_STATUSES} CRLStatus values "
                          f"(RFC 9483 §4.3.4), not {len(statuses)}")
    return statuses


def _status(status: Any) -> CRLStatus:
    source = status["source"]
    this_update = _time(status["thisUpdate"]) if status["thisUpdate"].isValue else None
    if source.getName() == "dpn":
        dpn = source["dpn"]
        if dpn.getName() != "fullName":
            raise DecodeError("a dpn source names its CRL by fullName, not relative to its "
                              "issuer")
        uris = tuple(str(name["uniformResourceIdentifier"]) for name in dpn["fullName"]
                     if name.getName() == "uniformResourceIdentifier")
        return CRLStatus(uris, (), this_update)
    issuers = tuple(encoder.encode(name["directoryName"]["rdnSequence"])
                    for name in source["issuer"]
                    if name.getName() == "directoryName")
    return CRLStatus((), issuers, this_update)


def _time(time: Any) -> datetime:
    moment: datetime = time.getComponent().asDateTime
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
