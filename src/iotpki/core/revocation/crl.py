"""CRL publication per issuing authority (RFC 5280 §5).

- Full CRLs (§5.1) with CRL number (§5.2.3), authority key identifier (§5.2.1), issuing
  distribution point (§5.2.5) and a freshest CRL pointer to the delta CRL (§5.2.6).
- Delta CRLs (§5.2.4) with a critical delta CRL indicator naming the base full CRL; they
  list every status change since that base, released holds with removeFromCRL (§5.3.1).
- Entries carry the reason code (§5.3.1) and the invalidity date (§5.3.2) when known.
- Full and delta CRLs share one number sequence (§5.2.3); a full CRL and the delta
  published with it carry the same number.

A publication holds the authority's CRL-number row locked, so several nodes never issue
two CRLs with one number; the entries are encoded in one pass (`iotpki.wire.crl`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.ca.authority import Authority, AuthorityKind
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import AuthorityRepository
from iotpki.core.ca.urls import PublicURLs
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.keyring import KeyRing
from iotpki.core.ports import Transaction
from iotpki.core.revocation.crl_policy import CRLPolicy, parse_delay
from iotpki.core.revocation.ports import CRLRepository, RevocationIndex
from iotpki.core.revocation.status import CRLInfo, CRLKind, PublishedCRL, StatusEntry
from iotpki.wire.crl import RevokedEntry, encode_revoked_certificates, splice_revoked
from iotpki.wire.keys import signature_hash_for

__all__ = ["CRLPolicy", "CRLPublisher", "crl_entry", "due_kinds", "parse_delay"]


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


class CRLUnitOfWork(Transaction, Protocol):
    """The repositories CRL publication uses."""

    @property
    def authorities(self) -> AuthorityRepository: ...

    @property
    def crls(self) -> CRLRepository: ...

    @property
    def revocation(self) -> RevocationIndex: ...


class CRLPublisher:
    def __init__(self, uow: Callable[[], CRLUnitOfWork], keys: KeyRing, urls: PublicURLs, clock: Clock,
                 policy: CRLPolicy | None = None) -> None:
        self._uow = uow
        self._keys = keys
        self._urls = urls
        self._clock = clock
        self.policy = policy or CRLPolicy()
        self._signers: dict[str, _Signer] = {}
        # Newest (full, delta) seen by this node, so that a scheduler round that finds
        # nothing due takes no lock and writes nothing.
        self._known: dict[str, tuple[CRLInfo | None, CRLInfo | None]] = {}

    def publish_if_due(self, authority: str, counter: int) -> list[PublishedCRL]:
        """Scheduler entry: `counter` is the authority's revocation counter as last polled.
        When something looks due, `publish` decides again under the CRL-number lock (another
        node may have published meanwhile)."""
        known = self._known.get(authority)
        if known is not None and not due_kinds(self.policy, self._clock.now(), *known, counter):
            return []
        published = self.publish(authority)
        with self._uow() as uow:
            self._known[authority] = (uow.crls.latest_info(authority, CRLKind.FULL),
                                      uow.crls.latest_info(authority, CRLKind.DELTA))
        return published

    def publish(self, authority: str, kinds: Iterable[CRLKind] | None = None) -> list[PublishedCRL]:
        """Publish the given kinds now, or (None) the kinds that are due; return them."""
        signer = self._signer(authority)
        now = self._clock.now()
        with self._uow() as uow:
            last_number = uow.crls.lock_number(authority)
            full = uow.crls.latest_info(authority, CRLKind.FULL)
            delta = uow.crls.latest_info(authority, CRLKind.DELTA)
            counter = uow.revocation.counter(authority)
            wanted = list(kinds) if kinds is not None else due_kinds(
                self.policy, now, full, delta, counter)
            if full is None and CRLKind.FULL not in wanted and wanted:
                wanted.insert(0, CRLKind.FULL)  # a delta needs a base
            published = self._issue(uow, signer, wanted, last_number + 1, full, counter, now)
            if published:
                uow.crls.set_number(authority, last_number + 1)
                uow.commit()
        return published

    def republish_out_of_scope(self) -> list[str]:
        """Replace at once every CRL whose issuingDistributionPoint does not name the
        current distribution points (the public URL changed): a relying party fetching the
        CRL from a certificate's CDP would otherwise find a CRL of another scope and reject
        it (RFC 5280 §5.2.5; OpenSSL: "different CRL scope"). Returns the authorities."""
        with self._uow() as uow:
            labels = [a.label for a in uow.authorities.list()
                      if a.key_ref is not None and a.can_issue
                      and a.kind is not AuthorityKind.ROOT]  # a root's CRL names no IDP
        republished = []
        for label in labels:
            latest = self.latest(label, CRLKind.FULL)
            if latest is not None and _scope_names(latest.der) != self._urls.crl_names(label):
                self.publish(label, [CRLKind.FULL, CRLKind.DELTA])
                republished.append(label)
        return republished

    def latest(self, authority: str, kind: CRLKind) -> PublishedCRL | None:
        with self._uow() as uow:
            return uow.crls.latest(authority, kind)

    def latest_info(self, authority: str, kind: CRLKind) -> CRLInfo | None:
        with self._uow() as uow:
            return uow.crls.latest_info(authority, kind)

    def _issue(self, uow: CRLUnitOfWork, signer: _Signer, kinds: list[CRLKind], number: int,
               full: CRLInfo | None, counter: int, now: datetime) -> list[PublishedCRL]:
        published = []
        base = full
        for kind in (k for k in (CRLKind.FULL, CRLKind.DELTA) if k in kinds):
            if kind is CRLKind.FULL:
                entries = uow.revocation.crl_entries(signer.authority.label)
                crl = self._build(signer, kind, number, None, counter, entries, now)
                base = base or crl.info  # the first full CRL is its own delta's base
            else:
                assert base is not None
                changes = uow.revocation.changed_since(signer.authority.label,
                                                       base.revocation_seq)
                crl = self._build(signer, kind, number, base.number, counter,
                                  (crl_entry(c) for c in changes), now)
            uow.crls.add(crl)
            published.append(crl)
        return published

    def _build(self, signer: _Signer, kind: CRLKind, number: int, base_number: int | None,
               counter: int, entries: Iterator[RevokedEntry], now: datetime) -> PublishedCRL:
        validity = (self.policy.full_validity if kind is CRLKind.FULL
                    else self.policy.delta_validity)
        frame = self._frame(signer, kind, number, base_number, now, now + validity)
        revoked, count = encode_revoked_certificates(entries)
        frame_der = frame.public_bytes(serialization.Encoding.DER)
        der = splice_revoked(frame_der, revoked, signer.key, signer.hash)
        info = CRLInfo(signer.authority.label, kind, number, base_number, counter, now,
                       now + validity, count)
        return PublishedCRL(info, der)

    def _frame(self, signer: _Signer, kind: CRLKind, number: int, base_number: int | None,
               now: datetime, next_update: datetime) -> x509.CertificateRevocationList:
        ca = signer.authority.certificate
        label = signer.authority.label
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(ca.subject).last_update(now).next_update(next_update)
                   .add_extension(_authority_key_identifier(ca), False)
                   .add_extension(x509.CRLNumber(number), False))
        if signer.authority.kind is not AuthorityKind.ROOT:
            # §5.2.5: the same IDP on full and delta CRLs (one scope); it names the full CRL's
            # URL, as every certificate's CDP does (and the URLs used before the public URL
            # changed, which older certificates name). A root's CRL has none: the root itself has
            # no CDP, and verifiers that check the anchor (OpenSSL -crl_check_all) would find
            # it outside the CRL's scope.
            builder = builder.add_extension(
                _issuing_distribution_point(self._urls.crl_names(label)), True)
        if kind is CRLKind.DELTA:
            assert base_number is not None
            builder = builder.add_extension(x509.DeltaCRLIndicator(base_number), True)
        else:
            builder = builder.add_extension(x509.FreshestCRL([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(self._urls.delta_crl(label))],
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


def _issuing_distribution_point(urls: list[str]) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(u) for u in urls], relative_name=None,
        only_contains_user_certs=False, only_contains_ca_certs=False, only_some_reasons=None,
        indirect_crl=False, only_contains_attribute_certs=False)
