"""Revoking, holding and releasing certificates (RFC 5280 §5.3.1 reason codes).

certificateHold is the only reversible reason: a held certificate can be
released (it becomes good again, removeFromCRL in the next delta CRL) or
revoked for good with another reason.

Infrastructure certificates (the service's own: OCSP responders, CMP protection, manifest
signers, the HTTPS certificate; `core.ca.profile.INFRASTRUCTURE_KINDS`) are never revoked
through a tenant's request: a single revocation is refused (`AccessDeniedError`) and a
bulk revocation leaves them out. Only the operator (`iotpki cert revoke`) revokes one;
the service is then told (`on_infrastructure_revoked`) so that it replaces it at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography import x509

from iotpki.core.audit.log import AuditRecord, append_audit, append_audit_many
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.ports import CertificateQuery, Protected, RevocationCandidate
from iotpki.core.clock import Clock
from iotpki.core.errors import AccessDeniedError, ConflictError, NotFoundError
from iotpki.core.events import Event
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory

# Reasons a certificate may be revoked with (RFC 5280 §5.3.1); removeFromCRL only appears in
# delta CRLs and is produced by `release`, never asked for.
log = logging.getLogger(__name__)
# The service's own certificates now (its HTTPS certificate may have been replaced).
Infrastructure = Callable[[], Protected]

@dataclass(frozen=True)
class BulkRevocation:
    revoked: int  # certificates whose status changed
    reason: str
    at: datetime
    protected: int = 0  # infrastructure certificates the filter matched, left alone


@dataclass(frozen=True)
class BulkPreview:
    """What `revoke_matching` would do now: how many certificates would change status, and
    how many infrastructure certificates the filter matches that it would leave alone."""

    changes: int
    protected: int


class RevocationService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 infrastructure: Infrastructure = Protected,
                 holder_revokes_hold: Callable[[str], bool] = lambda profile: False) -> None:
        self._uow = uow
        self._clock = clock
        self._infrastructure = infrastructure
        self._holder_revokes_hold = holder_revokes_hold  # by profile name
        # Called after the operator revoked an infrastructure certificate (and committed).
        self.on_infrastructure_revoked: list[Callable[[CertificateRecord], None]] = []

    def revoke(
        self, authority: str, serial: int, reason: x509.ReasonFlags, actor: str,
        invalidity_date: datetime | None = None, operator: bool = False,
        holder: bool = False,
    ) -> CertificateRecord:
        """`invalidity_date`: when the key is known or suspected to have been compromised
        (RFC 5280 §5.3.2); it goes into CRL entries. `operator`: the request comes from the
        operator's console, the only place an infrastructure certificate is revoked from.
        `holder`: the certificate's own holder asks (a CMP rr signed with it); a hold is
        then not turned into a revocation unless the profile lets the holder."""
        now = self._clock.now()
        with self._uow() as uow:
            record = _current(uow, authority, serial)
            if holder and record.status is CertificateStatus.HELD and \
                    not self._holder_revokes_hold(record.profile):
                raise AccessDeniedError(
                    f"certificate {authority}:{serial:x} is on hold; only an operator revokes "
                    "it for good or releases it")
            infrastructure = self._infrastructure().covers(record.profile, record.fingerprint)
            if infrastructure and not operator:
                raise AccessDeniedError(
                    f"certificate {authority}:{serial:x} is an infrastructure certificate of "
                    "the service; only the operator revokes it (iotpki cert revoke)")
            revoke_in(uow, record, reason, actor, now, invalidity_date)
            uow.commit()
        revoked = self._reload(authority, serial)
        if infrastructure:
            log.warning("infrastructure certificate %s:%x (%s) revoked by %s; replacing it",
                        authority, serial, record.profile, actor)
            for replace_it in self.on_infrastructure_revoked:
                replace_it(revoked)
        return revoked

    def _scope(self, query: CertificateQuery, hold: bool
               ) -> tuple[CertificateQuery, frozenset[CertificateStatus], Protected]:
        """(the whole query, the statuses a bulk change acts on, what it leaves alone):
        already revoked certificates, and held ones for a hold."""
        statuses = frozenset({CertificateStatus.GOOD} if hold
                             else {CertificateStatus.GOOD, CertificateStatus.HELD})
        return replace(query, limit=None, offset=0), statuses, self._infrastructure()

    def preview_matching(self, query: CertificateQuery, reason: x509.ReasonFlags) -> BulkPreview:
        """Counted in the database (over indexes), whatever the number matched."""
        with self._uow() as uow:
            count = uow.certificates.count_revocation_candidates(
                *self._scope(query, reason is x509.ReasonFlags.certificate_hold))
        return BulkPreview(count.changes, count.protected)

    def revoke_matching(
        self, query: CertificateQuery, reason: x509.ReasonFlags, actor: str,
        invalidity_date: datetime | None = None, expected: int | None = None,
    ) -> BulkRevocation:
        """Revoke (or hold) every certificate the query matches, in ONE transaction: all or
        none. Already revoked certificates are left alone (and held ones, for a hold). Each
        certificate gets its own audit entry and event, as if revoked one by one; the
        revocation counter moves once per authority, so the next delta CRL lists them all.
        `expected`: the count the caller was shown (`preview_matching`); if the filter now
        matches another number, nothing changes (ConflictError)."""
        now = self._clock.now()
        hold = reason is x509.ReasonFlags.certificate_hold
        status = CertificateStatus.HELD if hold else CertificateStatus.REVOKED
        scope = self._scope(query, hold)
        with self._uow() as uow:
            count = uow.certificates.count_revocation_candidates(*scope)
            # Refused on the count, before reading the candidates; and again on what was
            # read: under READ COMMITTED (PostgreSQL) the read may see a newer commit.
            _check(expected, count.changes)
            candidates = uow.certificates.revocation_candidates(*scope)
            _check(expected, len(candidates))
            by_authority: dict[str, list[RevocationCandidate]] = defaultdict(list)
            for candidate in candidates:
                by_authority[candidate.authority].append(candidate)
            for authority, group in sorted(by_authority.items()):
                uow.revocation.record_bulk_change(authority, [c.serial for c in group], status,
                                                  now, reason.value, invalidity_date)
            if candidates:
                self._record_many(uow, actor, hold, candidates, now, reason.value)
            uow.commit()
        return BulkRevocation(len(candidates), reason.value, now, count.protected)

    @staticmethod
    def _record_many(uow: UnitOfWork, actor: str, hold: bool,
                     candidates: list[RevocationCandidate], now: datetime, reason: str) -> None:
        action = "certificate.hold" if hold else "certificate.revoke"
        event_type = "certificate.held" if hold else "certificate.revoked"
        targets = [f"{c.authority}:{c.serial}" for c in candidates]
        append_audit_many(uow.audit, now, (
            AuditRecord(action, "success", actor, target,
                        {"reason": reason, "subject": c.subject, "bulk": True})
            for target, c in zip(targets, candidates, strict=True)))
        uow.events.add_many([Event(event_type, now, {"certificate": t, "reason": reason})
                             for t in targets])

    def release(self, authority: str, serial: int, actor: str) -> CertificateRecord:
        now = self._clock.now()
        with self._uow() as uow:
            release_in(uow, _current(uow, authority, serial), actor, now)
            uow.commit()
        return self._reload(authority, serial)

    def _reload(self, authority: str, serial: int) -> CertificateRecord:
        with self._uow() as uow:
            return _current(uow, authority, serial)


def _check(expected: int | None, matched: int) -> None:
    if expected is not None and matched != expected:
        raise ConflictError(f"the filter now matches {matched} certificates, "
                            f"not the {expected} shown: review the count again")


def revoke_in(uow: UnitOfWork, record: CertificateRecord, reason: x509.ReasonFlags, actor: str,
              now: datetime, invalidity_date: datetime | None = None) -> None:
    """Revoke or hold inside the caller's transaction (a lifecycle event revokes all of a
    device's certificates in one), with its audit entry, event and revocation index change."""
    authority, serial = record.authority, record.serial
    if record.status is CertificateStatus.REVOKED:
        raise ConflictError(f"certificate {authority}:{serial:x} is already revoked")
    hold = reason is x509.ReasonFlags.certificate_hold
    if hold and record.status is CertificateStatus.HELD:
        raise ConflictError(f"certificate {authority}:{serial:x} is already on hold")
    status = CertificateStatus.HELD if hold else CertificateStatus.REVOKED
    # A hold that becomes a revocation keeps the original revocation time: the key was
    # already suspect then (RFC 5280 §5.3.1, certificateHold).
    at = record.revoked_at if record.revoked_at is not None else now
    uow.certificates.set_status(authority, serial, status, at, reason.value)
    uow.revocation.record_change(authority, serial, now, invalidity_date=invalidity_date)
    _record(uow, actor, "certificate.revoke" if not hold else "certificate.hold", record, now,
            {"reason": reason.value})


def release_in(uow: UnitOfWork, record: CertificateRecord, actor: str, now: datetime) -> None:
    """Release a held certificate inside the caller's transaction (removeFromCRL)."""
    authority, serial = record.authority, record.serial
    if record.status is not CertificateStatus.HELD:
        raise ConflictError(
            f"certificate {authority}:{serial:x} is {record.status.value}, not on hold; "
            "only certificateHold can be released"
        )
    uow.certificates.set_status(authority, serial, CertificateStatus.GOOD, None, None)
    uow.revocation.record_change(authority, serial, now, released_at=now)
    _record(uow, actor, "certificate.release", record, now, {})


def _current(uow: UnitOfWork, authority: str, serial: int) -> CertificateRecord:
    record = uow.certificates.get(authority, serial)
    if record is None:
        raise NotFoundError(f"no certificate {serial:x} issued by {authority!r}")
    return record


_EVENTS = {"certificate.revoke": "certificate.revoked", "certificate.hold": "certificate.held",
           "certificate.release": "certificate.released"}


def _record(uow: UnitOfWork, actor: str, action: str, record: CertificateRecord,
            now: datetime, details: dict[str, str]) -> None:
    target = f"{record.authority}:{record.serial_hex}"
    append_audit(uow.audit, now, AuditRecord(
        action, "success", actor, target, {**details, "subject": record.subject}))
    uow.events.add(Event(_EVENTS[action], now, {"certificate": target, **details}))
