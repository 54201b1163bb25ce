"""What the CA needs stored: authorities, issued certificates, archived server-generated keys,
and the service's own certificates (`core.ca.service_certificates`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from cryptography import x509

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus


class AuthorityRepository(Protocol):
    def add(self, authority: Authority) -> None: ...

    def get(self, label: str) -> Authority | None: ...

    def list(self) -> list[Authority]: ...

    def set_crl_shard_window(self, label: str, window: timedelta | None) -> None:
        """Shard the authority's CRL by expiry window from now on (None: one CRL)."""
        ...


@dataclass(frozen=True)
class CertificateQuery:
    authority: str | None = None
    status: CertificateStatus | None = None
    subject_contains: str | None = None
    subject: str | None = None  # exactly this RFC 4514 subject (indexed)
    # Subjects beginning with this, case-sensitive (RFC 4514 as stored, e.g. "CN=sensor-"):
    # an index range, where `subject_contains` reads every subject.
    subject_prefix: str | None = None
    expires_before: datetime | None = None
    profile: str | None = None
    organization: str | None = None  # certificates of this organization's authorities
    limit: int | None = 100  # None: all
    offset: int = 0
    # Keyset pagination: only records after this `position` (before it, newest first), so a
    # page costs an index range scan however deep it is (an offset reads every row before).
    after: int | None = None
    newest_first: bool = False  # issue order by default; the CLI lists the newest first


class RevocationCandidate(NamedTuple):
    """The few facts a bulk revocation needs about one certificate (not its DER)."""

    authority: str
    serial: str  # hex, as stored
    subject: str
    status: CertificateStatus
    profile: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class Protected:
    """The certificates a bulk change leaves alone (the service's own): those of these
    profiles and those with these fingerprints."""

    profiles: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()

    def covers(self, profile: str, fingerprint: str) -> bool:
        return profile in self.profiles or fingerprint in self.fingerprints


class CandidateCount(NamedTuple):
    """What a bulk change would act on: how many certificates, and how many protected ones
    it matches and leaves alone."""

    changes: int
    protected: int


class CertificateRepository(Protocol):
    def add(self, record: CertificateRecord) -> None:
        """Insert; raise `ConflictError` if (authority, serial) is already taken."""
        ...

    def add_many(self, records: list[CertificateRecord]) -> None:
        """Insert several in one statement; `ConflictError` if any serial is taken."""
        ...

    def get(self, authority: str, serial: int) -> CertificateRecord | None: ...

    def get_by_fingerprint(self, fingerprint: str) -> CertificateRecord | None: ...

    def find(self, query: CertificateQuery) -> list[CertificateRecord]: ...

    def set_status(
        self, authority: str, serial: int, status: CertificateStatus,
        revoked_at: datetime | None, reason: str | None,
    ) -> None: ...

    def revocation_candidates(self, query: CertificateQuery,
                              statuses: frozenset[CertificateStatus],
                              protected: Protected) -> list[RevocationCandidate]:
        """Every certificate matching the query whose status is one of `statuses`, the
        protected ones left out (limit and offset ignored), cheaply."""
        ...

    def count_revocation_candidates(self, query: CertificateQuery,
                                    statuses: frozenset[CertificateStatus],
                                    protected: Protected) -> CandidateCount:
        """How many `revocation_candidates` would return, and how many protected ones
        the same filter matches: counted over indexes, no row read into the process."""
        ...


@dataclass(frozen=True)
class ArchivedKey:
    """A server-generated private key kept for recovery (profile `key_archival: true`):
    the PKCS #8 DER sealed by the `SecretSealer`, never stored in the clear."""

    authority: str
    serial_hex: str
    fingerprint: str
    sealed: bytes
    archived_at: datetime


class KeyArchiveRepository(Protocol):
    def add(self, key: ArchivedKey) -> None: ...

    def get(self, fingerprint: str) -> ArchivedKey | None: ...


class Purpose(StrEnum):
    """What a service certificate is for; the value names its profile."""

    OCSP_SIGNING = "ocsp-responder"  # owner: an authority
    CMP_PROTECTION = "cmp-protection"  # owner: an authority
    KEY_DELIVERY = "key-delivery"  # owner: an authority (EST §4.4.2 key packages)
    MANIFEST_SIGNING = "manifest-signer"  # owner: an organization
    SCEP_RA = "scep-ra"  # owner: a SCEP endpoint ("scep:<label>"), RSA (RFC 8894 §2.1)


@dataclass(frozen=True)
class ServiceCertificate:
    owner: str  # an authority label, or an organization label (manifest signing)
    purpose: Purpose
    key_ref: str
    certificate: x509.Certificate
    created_at: datetime

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


class ServiceCertificateRepository(Protocol):
    def add(self, record: ServiceCertificate) -> None:
        """Store a new current certificate (older ones are kept, no longer current)."""
        ...

    def current(self, owner: str, purpose: Purpose) -> ServiceCertificate | None:
        """The newest certificate of this owner for this purpose."""
        ...
