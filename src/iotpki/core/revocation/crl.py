"""CRL publication per issuing authority (RFC 5280 §5).

- Full CRLs (§5.1) with CRL number (§5.2.3), authority key identifier (§5.2.1), issuing
  distribution point (§5.2.5) and a freshest CRL pointer to the delta CRL (§5.2.6).
- Delta CRLs (§5.2.4) with a critical delta CRL indicator naming the base full CRL; they
  list every status change since that base, released holds with removeFromCRL (§5.3.1).
- Entries carry the reason code (§5.3.1) and the invalidity date (§5.3.2) when known.
- Full and delta CRLs share one number sequence (§5.2.3); a full CRL and the delta
  published with it carry the same number.
- Sharded authorities (`core.ca.crl_shard`) publish one full and delta CRL per shard, each
  with an IDP naming the shard's URL (onlyContainsUserCerts) and its own number sequence
  (§5.2.3 numbers per scope); their unsharded CRL keeps covering the certificates issued
  before sharding. `core.revocation.crl_shards` spreads the shards' builds over nodes.

A publication holds the scope's CRL-number row locked, so several nodes never issue
two CRLs with one number; the entries are encoded in one pass (`iotpki.wire.crl`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.ca.authority import Authority, AuthorityKind
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import AuthorityRepository
from iotpki.core.ca.urls import PublicURLs, crl_scope_name
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.keyring import KeyRing
from iotpki.core.ports import Transaction
from iotpki.core.revocation.crl_policy import CRLPolicy, parse_delay
from iotpki.core.revocation.ports import (
    CRLRepository,
    CRLShard,
    CRLShardRepository,
    RevocationIndex,
)
from iotpki.core.revocation.status import CRLInfo, CRLKind, PublishedCRL, StatusEntry
from iotpki.wire.crl import RevokedEntry, encode_revoked_certificates, splice_revoked
from iotpki.wire.keys import signature_hash_for

__all__ = ["CRLPolicy", "CRLPublisher", "crl_entry", "due_kinds", "parse_delay"]

log = logging.getLogger(__name__)
# A CRL shard's size goal (docs/crl.md): a relying party on a constrained link fetches it.
SHARD_TARGET_BYTES = 1_000_000


def due_kinds(policy: CRLPolicy, now: datetime, full: CRLInfo | None, delta: CRLInfo | None,
              counter: int) -> list[CRLKind]:
    """Which CRLs an authority needs now, given its newest ones and its revocation counter."""
    if full is None or now >= full.this_update + policy.full_interval:
        return [CRLKind.FULL, CRLKind.DELTA]
    if counter > full.revocation_seq and now >= full.this_update + policy.full_after_change:
        return [CRLKind.FULL, CRLKind.DELTA]  # a change the full CRL does not list yet
    newest = max((c for c in (full, delta) if c is not None), key=lambda c: c.number)
    if delta is None or now >= delta.this_update + policy.delta_interval:
        return [CRLKind.DELTA]
    if counter > newest.revocation_seq and now >= newest.this_update + policy.debounce:
        return [CRLKind.DELTA]
    return []


def crl_entry(entry: StatusEntry) -> RevokedEntry:
    """A CRL entry; a certificate back to good is a removeFromCRL entry (delta CRLs only)."""
    if entry.status is CertificateStatus.GOOD:
        assert entry.released_at is not None
        return RevokedEntry(entry.serial_hex, _seconds(entry.released_at), "removeFromCRL")
    assert entry.revoked_at is not None
    invalidity = entry.invalidity_date
    return RevokedEntry(entry.serial_hex, _seconds(entry.revoked_at), entry.reason,
                        _seconds(invalidity) if invalidity is not None else None)


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())  # whole seconds: CRL times carry no fractions (§5.1.2.4)


class _Signer:
    def __init__(self, authority: Authority, key: Any) -> None:
        self.authority = authority
        self.key = key
        self.hash: Any = signature_hash_for(key)  # a hash the key's algorithm accepts, or None


@dataclass(frozen=True)
class _Scope:
    """One publication: who signs, which scope (a shard, or None: the whole CA), the CRL
    number, the revocation counter it reflects, and thisUpdate."""

    signer: _Signer
    shard: int | None
    number: int
    counter: int
    now: datetime


def _changed(uow: CRLUnitOfWork, authority: str, shard: int | None, full: CRLInfo | None,
             delta: CRLInfo | None, counter: int, now: datetime) -> int:
    """The change mark `due_kinds` compares with the newest CRLs: the authority's counter,
    or for a shard (and for the own CRL of an authority with live shards) the newest
    counter value stamped on one of the scope's own certificates, so that a change in
    one scope does not make the others due."""
    if shard is None and not uow.crl_shards.has_live(authority, now):
        return counter
    newest = max((c.revocation_seq for c in (full, delta) if c is not None), default=0)
    return uow.revocation.shard_changes(authority, newest).get(shard, 0)


class CRLUnitOfWork(Transaction, Protocol):
    """The repositories CRL publication uses."""

    @property
    def authorities(self) -> AuthorityRepository: ...

    @property
    def crls(self) -> CRLRepository: ...

    @property
    def revocation(self) -> RevocationIndex: ...

    @property
    def crl_shards(self) -> CRLShardRepository: ...


class CRLPublisher:
    def __init__(self, uow: Callable[[], CRLUnitOfWork], keys: KeyRing, urls: PublicURLs, clock: Clock,
                 policy: CRLPolicy | None = None,
                 reads: Callable[[], CRLUnitOfWork] | None = None) -> None:
        self._uow = uow
        # Where published CRLs are served from (a read replica may trail the primary).
        self._reads = reads or uow
        self._keys = keys
        self._urls = urls
        self._clock = clock
        self.policy = policy or CRLPolicy()
        self._signers: dict[str, _Signer] = {}
        # Newest (full, delta) seen by this node, so that a scheduler round that finds
        # nothing due takes no lock and writes nothing.
        self._known: dict[tuple[str, int | None], tuple[CRLInfo | None, CRLInfo | None]] = {}

    def publish_if_due(self, authority: str, counter: int,
                       shard: int | None = None) -> list[PublishedCRL]:
        """Scheduler entry: `counter` is the authority's revocation counter as last polled
        (for a shard: the newest counter value stamped on one of its certificates, so that
        changes in other shards do not make it due). When something looks due, `publish`
        decides again under the CRL-number lock (another node may have published meanwhile)."""
        if not self.looks_due(authority, counter, shard, load=False):
            return []
        published = self.publish(authority, shard=shard)
        self._remember(authority, shard)
        return published

    def looks_due(self, authority: str, counter: int, shard: int | None = None,
                  load: bool = True) -> bool:
        """Whether the newest CRLs this node knows of call for a new one (no lock taken).
        Unknown scopes are read from the store when `load`, else count as due."""
        known = self._known.get((authority, shard))
        if known is None:
            if not load:
                return True
            known = self._remember(authority, shard)
        return bool(due_kinds(self.policy, self._clock.now(), *known, counter))

    def newest_seq(self, authority: str, shard: int | None = None) -> int:
        """The revocation counter the scope's newest CRL this node knows of reflects."""
        known = self._known.get((authority, shard)) or self._remember(authority, shard)
        return max((c.revocation_seq for c in known if c is not None), default=0)

    def _remember(self, authority: str, shard: int | None) -> tuple[CRLInfo | None, CRLInfo | None]:
        with self._uow() as uow:
            known = (uow.crls.latest_info(authority, CRLKind.FULL, shard),
                     uow.crls.latest_info(authority, CRLKind.DELTA, shard))
        self._known[(authority, shard)] = known
        return known

    def publish(self, authority: str, kinds: Iterable[CRLKind] | None = None,
                shard: int | None = None) -> list[PublishedCRL]:
        """Publish the given kinds now, or (None) the kinds that are due; return them.
        `shard`: the CRLs of one CRL shard (`core.ca.crl_shard`); None: the authority's own."""
        signer = self._signer(authority)
        now = self._clock.now()
        with self._uow() as uow:
            last_number = uow.crls.lock_number(authority, shard)
            full = uow.crls.latest_info(authority, CRLKind.FULL, shard)
            delta = uow.crls.latest_info(authority, CRLKind.DELTA, shard)
            counter = uow.revocation.counter(authority)
            wanted = list(kinds) if kinds is not None else due_kinds(
                self.policy, now, full, delta, _changed(uow, authority, shard, full, delta,
                                                        counter, now))
            if full is None and CRLKind.FULL not in wanted and wanted:
                wanted.insert(0, CRLKind.FULL)  # a delta needs a base
            scope = _Scope(signer, shard, last_number + 1, counter, now)
            published = self._issue(uow, scope, wanted, full)
            if published:
                uow.crls.set_number(authority, last_number + 1, shard)
                uow.commit()
        return published

    def republish_out_of_scope(self) -> list[str]:
        """Replace at once every CRL whose issuingDistributionPoint does not name the
        current distribution points (the public URL changed): a relying party fetching the
        CRL from a certificate's CDP would otherwise find a CRL of another scope and reject
        it (RFC 5280 §5.2.5; OpenSSL: "different CRL scope"). Returns the scopes' names
        (`<label>`, or `<label>.<shard>` for a CRL shard)."""
        with self._uow() as uow:
            scopes: list[tuple[str, int | None]] = [
                (a.label, None) for a in uow.authorities.list()
                if a.key_ref is not None and a.can_issue
                and a.kind is not AuthorityKind.ROOT]  # a root's CRL names no IDP
            scopes += [(s.authority, s.shard) for s in uow.crl_shards.live(self._clock.now())]
        republished = []
        for label, shard in scopes:
            latest = self.latest(label, CRLKind.FULL, shard, fresh=True)
            if latest is not None and \
                    _scope_names(latest.der) != self._urls.crl_names(label, shard):
                self.publish(label, [CRLKind.FULL, CRLKind.DELTA], shard)
                republished.append(crl_scope_name(label, shard))
        return republished

    def live_shards(self) -> list[CRLShard]:
        """The CRL shards still holding unexpired certificates, of every authority."""
        with self._uow() as uow:
            return uow.crl_shards.live(self._clock.now())

    def latest(self, authority: str, kind: CRLKind, shard: int | None = None,
               fresh: bool = False) -> PublishedCRL | None:
        """The newest CRL as served (`fresh`: as the primary has it, this node's own
        publications included)."""
        with (self._uow if fresh else self._reads)() as uow:
            return uow.crls.latest(authority, kind, shard)

    def latest_info(self, authority: str, kind: CRLKind,
                    shard: int | None = None) -> CRLInfo | None:
        with self._reads() as uow:
            return uow.crls.latest_info(authority, kind, shard)

    def _issue(self, uow: CRLUnitOfWork, scope: _Scope, kinds: list[CRLKind],
               full: CRLInfo | None) -> list[PublishedCRL]:
        published = []
        base = full
        label = scope.signer.authority.label
        for kind in (k for k in (CRLKind.FULL, CRLKind.DELTA) if k in kinds):
            if kind is CRLKind.FULL:
                entries = uow.revocation.crl_entries(label, scope.shard)
                crl = self._build(scope, kind, None, entries)
                base = base or crl.info  # the first full CRL is its own delta's base
            else:
                assert base is not None
                changes = uow.revocation.changed_since(label, base.revocation_seq, scope.shard)
                crl = self._build(scope, kind, base.number, (crl_entry(c) for c in changes))
            uow.crls.add(crl)
            published.append(crl)
        return published

    def _build(self, scope: _Scope, kind: CRLKind, base_number: int | None,
               entries: Iterator[RevokedEntry]) -> PublishedCRL:
        validity = (self.policy.full_validity if kind is CRLKind.FULL
                    else self.policy.delta_validity)
        frame = self._frame(scope, kind, base_number, scope.now + validity)
        revoked, count = encode_revoked_certificates(entries)
        frame_der = frame.public_bytes(serialization.Encoding.DER)
        signer = scope.signer
        der = splice_revoked(frame_der, revoked, signer.key, signer.hash)
        if scope.shard is not None and len(der) > SHARD_TARGET_BYTES:
            log.warning("CRL shard %s.%s: %s CRL of %d bytes is over the %d-byte target; "
                        "a shorter shard window keeps shards small (docs/crl.md)",
                        signer.authority.label, scope.shard, kind.value, len(der),
                        SHARD_TARGET_BYTES)
        info = CRLInfo(signer.authority.label, kind, scope.number, base_number, scope.counter,
                       scope.now, scope.now + validity, count, scope.shard)
        return PublishedCRL(info, der)

    def _frame(self, scope: _Scope, kind: CRLKind, base_number: int | None,
               next_update: datetime) -> x509.CertificateRevocationList:
        signer, shard = scope.signer, scope.shard
        ca = signer.authority.certificate
        label = signer.authority.label
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(ca.subject).last_update(scope.now).next_update(next_update)
                   .add_extension(_authority_key_identifier(ca), False)
                   .add_extension(x509.CRLNumber(scope.number), False))
        if signer.authority.kind is not AuthorityKind.ROOT or shard is not None:
            # §5.2.5: the same IDP on full and delta CRLs (one scope); it names the full CRL's
            # URL, as every certificate's CDP does (and the URLs used before the public URL
            # changed, which older certificates name). A root's own CRL has none: the root
            # itself has no CDP, and verifiers that check the anchor (OpenSSL
            # -crl_check_all) would find it outside the CRL's scope. A shard's CRL names the
            # shard's URL and covers end-entity certificates only (every profile issues
            # those; the CA certificates an authority signs stay on its own CRL).
            builder = builder.add_extension(_issuing_distribution_point(
                self._urls.crl_names(label, shard), user_certs_only=shard is not None), True)
        if kind is CRLKind.DELTA:
            assert base_number is not None
            builder = builder.add_extension(x509.DeltaCRLIndicator(base_number), True)
        else:
            builder = builder.add_extension(x509.FreshestCRL([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(self._urls.delta_crl(label, shard))],
                None, None, None)]), False)
        return builder.sign(signer.key, signer.hash)

    def _signer(self, label: str) -> _Signer:
        cached = self._signers.get(label)
        if cached is not None:
            return cached
        with self._uow() as uow:
            authority = uow.authorities.get(label)
        if authority is None:
            raise NotFoundError(f"unknown authority {label!r}")
        if authority.key_ref is None or not authority.can_issue:
            raise ConfigurationError(f"authority {label} holds no key and publishes no CRL")
        signer = _Signer(authority, self._keys.load(authority.key_ref))
        self._signers[label] = signer
        return signer


def _authority_key_identifier(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _scope_names(der: bytes) -> list[str]:
    """The names of a CRL's issuingDistributionPoint (none: the whole CA, a root's)."""
    try:
        point = x509.load_der_x509_crl(der).extensions.get_extension_for_class(
            x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in point.full_name or ()]


def _issuing_distribution_point(urls: list[str],
                                 user_certs_only: bool) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(u) for u in urls], relative_name=None,
        only_contains_user_certs=user_certs_only, only_contains_ca_certs=False, only_some_reasons=None,
        indirect_crl=False, only_contains_attribute_certs=False)
