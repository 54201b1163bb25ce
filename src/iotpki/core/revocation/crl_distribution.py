"""Serving the current CRLs (RFC 5280 §5; HTTP retrieval per RFC 5280 §4.2.1.13): each
authority's own, and each CRL shard's of a sharded authority (§5.2.5).

Each node keeps the newest CRL of each kind in memory and asks the database at most once
per `recheck` whether a newer one was published (by any node), so a CRL published after
a revocation is served everywhere within that interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from cryptography.hazmat.primitives import serialization

from iotpki.core.ca.ports import AuthorityRepository
from iotpki.core.ca.urls import SHARD_SEPARATOR
from iotpki.core.ca.urls import crl_scope_name as name_of
from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError
from iotpki.core.ports import Transaction
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.status import CRLKind, PublishedCRL

DELTA_SUFFIX = "-delta"


class _Held(NamedTuple):
    crl: PublishedCRL
    checked_at: datetime


def parse_crl_name(name: str, known: set[str]) -> tuple[str, CRLKind]:
    """`<label>` → full, `<label>-delta` → delta; a label that itself ends in -delta wins."""
    if name in known or not name.endswith(DELTA_SUFFIX):
        return name, CRLKind.FULL
    return name.removesuffix(DELTA_SUFFIX), CRLKind.DELTA


def parse_scope_name(name: str, known: set[str]) -> tuple[str, int | None, CRLKind]:
    """As `parse_crl_name`, and `<label>.<shard>[-delta]` names a CRL shard's CRL
    (`PublicURLs.crl`); NotFoundError when the shard part is not a number."""
    label, separator, rest = name.partition(SHARD_SEPARATOR)
    if not separator:
        whole, kind = parse_crl_name(name, known)
        return whole, None, kind
    kind = CRLKind.DELTA if rest.endswith(DELTA_SUFFIX) else CRLKind.FULL
    digits = rest.removesuffix(DELTA_SUFFIX)
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise NotFoundError(f"no CRL for {name!r}")
    return label, int(digits), kind


class AuthoritiesUnitOfWork(Transaction, Protocol):
    """The repositories CRL distribution uses."""

    @property
    def authorities(self) -> AuthorityRepository: ...


class CRLDistribution:
    def __init__(self, uow: Callable[[], AuthoritiesUnitOfWork], publisher: CRLPublisher, clock: Clock,
                 recheck: timedelta = timedelta(seconds=1)) -> None:
        self._uow = uow
        self._publisher = publisher
        self._clock = clock
        self._recheck = recheck
        self._held: dict[tuple[str, CRLKind, int | None], _Held] = {}
        self._lock = threading.Lock()
        self._labels: tuple[set[str], datetime] | None = None

    def issuing_authorities(self) -> set[str]:
        now = self._clock.now()
        if self._labels is not None and now < self._labels[1] + self._recheck:
            return self._labels[0]
        with self._uow() as uow:
            labels = {a.label for a in uow.authorities.list() if a.can_issue}
        self._labels = (labels, now)
        return labels

    def current(self, name: str) -> PublishedCRL:
        """The newest CRL named `<label>`, `<label>-delta`, or a CRL shard's
        `<label>.<shard>` and `<label>.<shard>-delta`; raise NotFoundError."""
        authorities = self.issuing_authorities()
        label, shard, kind = parse_scope_name(name, authorities)
        if label not in authorities:
            raise NotFoundError(f"no CRL for {name!r}")
        now = self._clock.now()
        held = self._held.get((label, kind, shard))
        if held is not None and now < held.checked_at + self._recheck:
            return held.crl
        with self._lock:
            crl = self._newest(label, kind, shard, held)
            self._held[(label, kind, shard)] = _Held(crl, now)
        return crl

    def _newest(self, label: str, kind: CRLKind, shard: int | None,
                held: _Held | None) -> PublishedCRL:
        info = self._publisher.latest_info(label, kind, shard)
        if held is not None and info is not None and info.number == held.crl.info.number:
            return held.crl
        crl = self._publisher.latest(label, kind, shard)
        if crl is None:  # nothing published yet: publish now rather than fail (a shard
            # nobody issued into is unknown: NotFoundError)
            self._publisher.publish(label, shard=shard)
            crl = self._publisher.latest(label, kind, shard, fresh=True)
        if crl is None:
            raise NotFoundError(f"no {kind.value} CRL published for {name_of(label, shard)}")
        return crl

    def ca_certificate(self, label: str) -> bytes:
        """The DER certificate of an authority (AIA caIssuers, RFC 5280 §4.2.2.1)."""
        with self._uow() as uow:
            authority = uow.authorities.get(label)
        if authority is None:
            raise NotFoundError(f"unknown authority {label!r}")
        return authority.certificate.public_bytes(serialization.Encoding.DER)
