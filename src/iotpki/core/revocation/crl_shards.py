"""Building the CRLs of CRL shards (RFC 5280 §5.2.5) across nodes, by lease.

A sharded authority has one full and one delta CRL per live shard (`core.ca.crl_shard`).
Every node's background round looks at the live shards; for each one whose CRLs look due
(a change to one of its own certificates, or its interval), it takes the shard's build
lease, compare-and-set in the store as webhook deliveries are claimed: of several nodes,
one builds the shard and the others go on to the next shard instead of waiting on its
CRL-number lock. Nodes walk the shards from a different starting point (their holder
name), so two nodes that start together build disjoint shards. A lease that a crashed
node never gave back ends after `lease`; the CRL-number lock still keeps two builds of one
shard from taking one number, whatever the leases.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from iotpki.core.clock import Clock
from iotpki.core.ports import Transaction
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.ports import CRLShard, CRLShardRepository, RevocationIndex
from iotpki.core.revocation.status import PublishedCRL

log = logging.getLogger(__name__)


class ShardsUnitOfWork(Transaction, Protocol):
    """The repositories shard scheduling uses."""

    @property
    def crl_shards(self) -> CRLShardRepository: ...

    @property
    def revocation(self) -> RevocationIndex: ...


class CRLShardBuilds:
    def __init__(self, uow: Callable[[], ShardsUnitOfWork], publisher: CRLPublisher,
                 clock: Clock, holder: str, lease: timedelta = timedelta(minutes=5),
                 reads: Callable[[], ShardsUnitOfWork] | None = None) -> None:
        self._uow = uow
        self._reads = reads or uow  # the round's look-ups never take SQLite's write lock
        self._publisher = publisher
        self._clock = clock
        self.holder = holder  # this node (host and process): who holds a lease
        self._lease = lease
        # Authority → the change mark of its own CRL, for authorities with live shards
        # (`CRLPublisher.publish_if_due`), as of the last round.
        self.own_marks: dict[str, int] = {}

    def run_once(self) -> list[PublishedCRL]:
        """Build every live shard that looks due and whose lease this node gets."""
        published: list[PublishedCRL] = []
        for shard, changed in self._due():
            if not self._claim(shard):
                continue  # another node builds it
            try:
                published += self._publisher.publish_if_due(shard.authority, changed,
                                                             shard.shard)
            except Exception:  # one shard's failure (its CA's key unreadable) spares the rest
                log.exception("CRL shard %s.%s not built", shard.authority, shard.shard)
            finally:
                self._release(shard)
        return published

    def _due(self) -> list[tuple[CRLShard, int]]:
        """The live shards whose newest CRLs (as this node knows them) call for new ones,
        with their change marks, starting at this node's own point of the list."""
        with self._reads() as uow:
            live = uow.crl_shards.live(self._clock.now())
        by_authority: dict[str, list[CRLShard]] = defaultdict(list)
        for shard in live:
            by_authority[shard.authority].append(shard)
        # One query per authority: the changes since the oldest of its scopes' CRLs (its
        # shards' and its own).
        since = {authority: min(self._publisher.newest_seq(authority, scope) for scope in
                                [None, *(s.shard for s in shards)])
                 for authority, shards in by_authority.items()}
        with self._reads() as uow:
            changes = {authority: uow.revocation.shard_changes(authority, seq)
                       for authority, seq in since.items()}
        # The own CRL of a sharded authority changes with its certificates in no shard only.
        self.own_marks = {authority: marks.get(None, 0) for authority, marks in changes.items()}
        marked = [(s, changes[s.authority].get(s.shard, 0)) for s in live]
        due = [(s, changed) for s, changed in marked
               if self._publisher.looks_due(s.authority, changed, s.shard)]
        start = zlib.crc32(self.holder.encode()) % len(due) if due else 0
        return due[start:] + due[:start]

    def _claim(self, shard: CRLShard) -> bool:
        now = self._clock.now()
        with self._uow() as uow:
            claimed = uow.crl_shards.claim(shard.authority, shard.shard, self.holder, now,
                                           now + self._lease)
            uow.commit()
        return claimed

    def _release(self, shard: CRLShard) -> None:
        with self._uow() as uow:
            uow.crl_shards.release(shard.authority, shard.shard, self.holder)
            uow.commit()
