"""What CRLs and OCSP answers are made of: status changes, published CRLs, responders.

RFC 5280 §5 (CRL content), RFC 6960 §2.2 (certificate status). The certificates index is
the single source: a CRL and an OCSP answer are two views of the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from iotpki.core.ca.certificate import CertificateStatus


class StatusEntry(NamedTuple):
    """The revocation facts of one certificate, as the index keeps them."""

    serial_hex: str
    status: CertificateStatus
    revoked_at: datetime | None
    reason: str | None  # x509.ReasonFlags value
    invalidity_date: datetime | None
    released_at: datetime | None


class CRLKind(StrEnum):
    FULL = "full"
    DELTA = "delta"  # RFC 5280 §5.2.4


@dataclass(frozen=True)
class CRLInfo:
    """What the store knows about a published CRL, without its (possibly large) DER."""

    authority: str
    kind: CRLKind
    number: int  # §5.2.3, one sequence shared by full and delta CRLs
    base_number: int | None  # §5.2.4 BaseCRLNumber of a delta CRL
    revocation_seq: int  # the authority's revocation counter this CRL reflects
    this_update: datetime
    next_update: datetime
    entries: int
    shard: int | None = None  # the CRL shard (core.ca.crl_shard); None: the whole CA


@dataclass(frozen=True)
class PublishedCRL:
    info: CRLInfo
    der: bytes
