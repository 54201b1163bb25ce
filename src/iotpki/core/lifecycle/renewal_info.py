"""When a certificate should be renewed: the suggested window that ACME Renewal Information
(RFC 9773 §4.2) publishes, and the operator's way to pull windows forward.

- Normal window: the first half of the profile's renewal window (`renewal_window`, the last
  third of the lifetime by default), narrowed to a slice chosen by the certificate's
  fingerprint, so a fleet issued at once renews spread over the window (the same answer on
  every node and every call; a client then picks a time inside it, §4.2).
- Revoked or held certificates: renew now (the window starts now).
- Pulled forward (`pull_forward`: a CA key compromise, a profile change): certificates of an
  authority (optionally one profile) issued before the pull get a window inside
  [pull time, pull time + spread], again sliced by fingerprint, unless their normal window
  is earlier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.profile import Profile, RenewalWindow
from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError
from iotpki.core.lifecycle.ports import RenewalPull
from iotpki.core.ports import UnitOfWorkFactory

MIN_SLICE = timedelta(minutes=10)


@dataclass(frozen=True)
class SuggestedWindow:
    start: datetime
    end: datetime
    explanation: str  # why (shown to operators; not sent as explanationURL)


def _fraction(fingerprint: str) -> float:
    """A stable number in [0, 1) from the certificate (its jitter)."""
    digest = hashlib.sha256(bytes.fromhex(fingerprint) if _hex(fingerprint)
                            else fingerprint.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _slice(start: datetime, end: datetime, fraction: float, parts: int = 4,
           ) -> tuple[datetime, datetime]:
    """One of the window's slices, `1/parts` wide (at least MIN_SLICE), placed by `fraction`."""
    width = max((end - start) / parts, min(MIN_SLICE, end - start))
    begin = start + (end - start - width) * fraction
    return begin, begin + width


class RenewalInfo:
    def __init__(self, uow: UnitOfWorkFactory, profiles: Mapping[str, Profile],
                 clock: Clock) -> None:
        self._uow = uow
        self._profiles = profiles
        self._clock = clock

    def window(self, record: CertificateRecord) -> SuggestedWindow:
        now = self._clock.now()
        fraction = _fraction(record.fingerprint)
        if record.status is not CertificateStatus.GOOD:
            return SuggestedWindow(now, now + MIN_SLICE, f"certificate is {record.status.value}")
        profile = self._profiles.get(record.profile)
        rule = profile.renewal_window if profile is not None else RenewalWindow()
        begin = rule.start(record.not_before, record.not_after)
        start, end = _slice(begin, begin + (record.not_after - begin) / 2, fraction)
        with self._uow() as uow:
            pulls = uow.renewal_pulls.pulls(record.authority)
        for pull in pulls:
            if pull.profile not in (None, record.profile) or record.issued_at >= pull.at:
                continue
            pulled_start, pulled_end = _slice(pull.at, pull.at + pull.spread, fraction)
            if pulled_start < start:
                start, end = pulled_start, pulled_end
                return SuggestedWindow(start, end, f"pulled forward: {pull.reason}")
        return SuggestedWindow(start, end, "the profile's renewal window")

    def pull_forward(self, authority: str, profile: str | None, spread: timedelta, reason: str,
                     actor: str) -> RenewalPull:
        """Ask every certificate of `authority` (or of one of its profiles) issued until now to
        renew within `spread` from now."""
        if profile is not None and profile not in self._profiles:
            raise NotFoundError(f"no profile {profile!r}")
        if spread <= timedelta(0):
            raise ValueError("the spread must be positive")
        now = self._clock.now()
        pull = RenewalPull(authority, profile, now, spread, reason)
        with self._uow() as uow:
            if uow.authorities.get(authority) is None:
                raise NotFoundError(f"no authority {authority!r}")
            uow.renewal_pulls.add_pull(pull)
            append_audit(uow.audit, now, AuditRecord(
                "renewal.pull_forward", "success", actor, authority,
                {"profile": profile, "spread_seconds": int(spread.total_seconds()),
                 "reason": reason}))
            uow.commit()
        return pull
