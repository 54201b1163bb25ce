"""Posture checks: what in an organization's fleet needs a look before it hurts.

- the same public key in the identities of two (or more) of its devices (a cloned or
  copied key: one device can impersonate the other);
- weak keys in its good certificates (`core.ca.key_facts.MINIMUM_BITS`);
- certificates expiring within `HORIZON` with no renewal seen (no later certificate of
  the same authority and subject); the service's own certificates (OCSP responder, CMP
  protection, ...) are left out: the service replaces them itself;
- its authorities that expire before certificates they issued (a leaf that outlives its
  CA fails validation from the CA's notAfter on, RFC 5280 §6.1.3 (a)(2)), or before which
  their parent expires;
- devices it owns whose good identity names an operational domain another organization
  owns (after an owner change, say).

Each question reads the store's indexes (`PostureQueries`), never a loop over certificates
in Python, and returns at most `LIMIT` findings (`more` tells there were others); what it
costs is bounded by the findings it returns, not by the store's size (a 1,000,000-certificate
store whose devices all got the same 256 keys shows its first page as fast as a small one).
The shared keys are recorded as identities are linked, and read from that record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.profile import INFRASTRUCTURE_KINDS, Profile
from iotpki.core.clock import Clock
from iotpki.core.ports import Transaction

HORIZON = timedelta(days=30)
LIMIT = 50
HOLDERS_COUNTED = 20  # devices counted per shared key; beyond it, "more" (a disaster)
LEAVES_COUNTED = 10_000  # outliving certificates counted per authority; beyond it, "more"
T = TypeVar("T")


@dataclass(frozen=True)
class DeviceRef:
    id: str
    name: str


@dataclass(frozen=True)
class SharedKey:
    key_id: str
    devices: tuple[DeviceRef, ...]  # at most HOLDERS_COUNTED, by name
    more_devices: bool = False  # held by more than HOLDERS_COUNTED devices


@dataclass(frozen=True)
class CertificateRef:
    authority: str
    serial_hex: str
    subject: str
    profile: str
    not_after: datetime
    key: str = ""  # "RSA 1024", for a weak key


@dataclass(frozen=True)
class OutlivedAuthority:
    authority: str
    not_after: datetime
    leaves_after: int  # good certificates it issued that expire after it (LEAVES_COUNTED at most)
    last_leaf: datetime | None
    parent: str | None = None  # set when the parent is what expires first
    parent_not_after: datetime | None = None
    more_leaves: bool = False  # more than LEAVES_COUNTED


@dataclass(frozen=True)
class ForeignDomain:
    device: DeviceRef
    domain: str
    domain_owner: str


@dataclass(frozen=True)
class Findings(Generic[T]):
    items: tuple[T, ...]
    more: bool  # more than LIMIT were found

    @classmethod
    def of(cls, found: Sequence[T], limit: int) -> Findings[T]:
        return cls(tuple(found[:limit]), len(found) > limit)


@dataclass(frozen=True)
class PostureReport:
    organization: str
    at: datetime
    shared_keys: Findings[SharedKey]
    weak_keys: Findings[CertificateRef]
    unrenewed: Findings[CertificateRef]
    outlived: tuple[OutlivedAuthority, ...]
    foreign_domains: Findings[ForeignDomain]

    @property
    def total(self) -> int:
        return sum(len(f.items) for f in (self.shared_keys, self.weak_keys, self.unrenewed,
                                          self.foreign_domains)) + len(self.outlived)


class PostureQueries(Protocol):
    """Each at most `limit` rows; `organization` owns the devices, `authorities` are its."""

    def shared_keys(self, organization: str, limit: int) -> list[SharedKey]: ...

    def weak_keys(self, authorities: Sequence[str], now: datetime,
                  limit: int) -> list[CertificateRef]: ...

    def unrenewed(self, authorities: Sequence[str], now: datetime, until: datetime,
                  skipped_profiles: Sequence[str], limit: int) -> list[CertificateRef]: ...

    def leaves_after(self, authority: str, moment: datetime,
                     most: int) -> tuple[int, datetime | None]:
        """Good certificates of `authority` whose notAfter is after `moment`: how many (up to
        `most`), and the last notAfter."""
        ...

    def foreign_domains(self, organization: str, now: datetime,
                        limit: int) -> list[ForeignDomain]: ...


class AuthorityList(Protocol):
    def list(self) -> Sequence[Authority]: ...


class PostureUnitOfWork(Transaction, Protocol):
    @property
    def posture(self) -> PostureQueries: ...

    @property
    def authorities(self) -> AuthorityList: ...


class PostureChecks:
    def __init__(self, uow: Callable[[], PostureUnitOfWork], clock: Clock,
                 profiles: Mapping[str, Profile]) -> None:
        self._uow = uow
        self._clock = clock
        self._service_profiles = sorted(
            name for name, p in profiles.items() if p.kind in INFRASTRUCTURE_KINDS)

    def report(self, organization: str, limit: int = LIMIT) -> PostureReport:
        now = self._clock.now()
        with self._uow() as uow:
            every = {a.label: a for a in uow.authorities.list()}
            own = sorted(label for label, a in every.items() if a.organization == organization)
            checks = uow.posture
            return PostureReport(
                organization, now,
                Findings.of(checks.shared_keys(organization, limit + 1), limit),
                Findings.of(checks.weak_keys(own, now, limit + 1), limit),
                Findings.of(checks.unrenewed(own, now, now + HORIZON,
                                                    self._service_profiles, limit + 1), limit),
                tuple(found for label in own
                      if (found := _outlived(checks, every[label], every)) is not None),
                Findings.of(checks.foreign_domains(organization, now, limit + 1), limit))


def _outlived(checks: PostureQueries, authority: Authority,
              every: dict[str, Authority]) -> OutlivedAuthority | None:
    count, last = checks.leaves_after(authority.label, authority.not_after, LEAVES_COUNTED + 1)
    parent = every.get(authority.parent) if authority.parent else None
    parent_first = parent is not None and parent.not_after < authority.not_after
    if not count and not parent_first:
        return None
    return OutlivedAuthority(
        authority.label, authority.not_after, min(count, LEAVES_COUNTED), last,
        parent.label if parent is not None and parent_first else None,
        parent.not_after if parent is not None and parent_first else None,
        count > LEAVES_COUNTED)
