"""The single issuance path for every protocol: policy → build → sign → persist → audit → event.

Protocol adapters (CLI, EST, CMP, REST) build an `IssuanceRequest` and map the
returned outcome (`Issued` or `Rejected`) to their wire form. A refusal is
audited and writes no certificate row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509

from iotpki.core.audit.log import AuditRecord, SealedRecord, append_audit_many, seal
from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.crl_shard import crl_shard_of, shard_expires_at
from iotpki.core.ca.extensions import (
    crl_distribution_points,
    issuer_extensions,
    subject_extensions,
)
from iotpki.core.ca.policy import CertificateTemplate, decide
from iotpki.core.ca.profile import API_CLIENT_KIND, OPERATOR_METHODS, Profile
from iotpki.core.ca.serial import new_serial
from iotpki.core.ca.urls import PublicURLs
from iotpki.core.clock import Clock
from iotpki.core.errors import ConflictError, PolicyError, RefusalReason
from iotpki.core.events import Event
from iotpki.core.keyring import KeyRing
from iotpki.core.lifecycle.device_service import IssuedIdentity, link_issued
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.supply_chain.domain_claims import DomainClaims, check_claims
from iotpki.wire.binding import encode_component_binding
from iotpki.wire.csr import (
    BadSignatureError,
    decode_certification_request,
    requested_sans,
    verify_csr,
)
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import signature_hash_for

SERIAL_ATTEMPTS = 3  # a 127-bit collision is astronomically rare; retrying is still cheap


class AttachedWrites(Protocol):
    """Rows a protocol keeps about the request (CMP's senderNonce and transaction state),
    written in the transaction that stores the outcome, so that the certificate and what
    the answer promises are committed together or not at all: one write transaction per
    request (issue 21). `write` raises to refuse the request; its transaction rolls back."""

    def write(self, uow: UnitOfWork, outcome: Issued | Rejected) -> None: ...


@dataclass(frozen=True)
class IssuanceRequest:
    authority: str
    profile: str
    csr: bytes  # PEM or DER, exactly as received
    requester: str
    # Values an RA approved (a registration); they replace what the CSR asks for.
    subject: x509.Name | None = None
    sans: tuple[x509.GeneralName, ...] | None = None
    not_after: datetime | None = None
    method: MethodName = MethodName.DIRECT  # how the request was authorized
    registration: str | None = None  # consumed in the issuing transaction (single use)
    component_digest: bytes | None = None  # the device's components (`wire.binding`)
    # The device the new identity is issued for (linked in the issuing transaction), and the
    # fingerprint of the identity the client presented (a device certificate issued from a
    # component in no device yet records a new device built from that component).
    device: str | None = None
    presented: str | None = None
    attached: AttachedWrites | None = None  # written in the storing transaction


class _Signing:
    """An authority with its loaded key and issuer-only extensions, cached per process:
    decrypting the key and building AKI/CDP/AIA for every certificate would be waste."""

    def __init__(self, authority: Authority, key: Any, urls: PublicURLs) -> None:
        self.authority = authority
        self.key = key
        self.hash = signature_hash_for(key)
        self.urls = urls
        self.shard_window = authority.crl_shard_window
        self.extensions = issuer_extensions(authority.label, authority.certificate, urls,
                                            with_cdp=self.shard_window is None)

    def crl_shard(self, not_after: datetime) -> int | None:
        """The CRL shard a certificate expiring then goes to; None: the CA's one CRL."""
        if self.shard_window is None:
            return None
        return crl_shard_of(not_after, self.shard_window)


class _LateRefusal(Exception):
    """A check that needs the storing transaction refused request `index` (a registration
    consumed meanwhile, a domain not owned): that request is refused, the rest stand."""

    def __init__(self, index: int, reason: RefusalReason, detail: str) -> None:
        self.index = index
        self.refusal = Rejected(reason, detail)


@dataclass(frozen=True)
class _Staged:
    """A decided request and everything its storing transaction writes, made before the
    write lock is taken (issue 21): under the lock run only statements and the audit
    chain's hash."""

    request: IssuanceRequest
    outcome: Issued | Rejected
    claims: DomainClaims  # what the certificate's names claim (empty for a refusal)
    audit: SealedRecord
    event: Event

    @classmethod
    def of(cls, request: IssuanceRequest, outcome: Issued | Rejected, now: datetime,
           claims: DomainClaims = DomainClaims()) -> _Staged:
        record, event = _audit_and_event(request, outcome, now)
        return cls(request, outcome, claims, seal(now, record), event)


class IssuanceService:
    def __init__(
        self, uow: UnitOfWorkFactory, keys: KeyRing, profiles: Mapping[str, Profile],
        urls: PublicURLs, clock: Clock,
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._profiles = profiles
        self._urls = urls
        self._clock = clock
        self._signing: dict[str, _Signing] = {}
        self._registered: set[tuple[str, int]] = set()  # CRL shards known to the store

    def issue(self, request: IssuanceRequest) -> Issued | Rejected:
        return self.issue_many([request])[0]

    def issue_many(self, requests: Sequence[IssuanceRequest]) -> list[Issued | Rejected]:
        """Decide and sign each request, then store every outcome in one transaction.

        The factory's provisioning station submits a tray of chips at once (DESIGN.md §1);
        one commit for the tray instead of one per chip. Outcomes keep the request order.
        """
        now = self._clock.now()
        for attempt in range(SERIAL_ATTEMPTS):
            staged = [self._staged(request, now) for request in requests]
            while True:
                try:
                    self._store(staged, now)
                    return [s.outcome for s in staged]
                except _LateRefusal as late:
                    staged[late.index] = _Staged.of(requests[late.index], late.refusal, now)
                except ConflictError:
                    if attempt == SERIAL_ATTEMPTS - 1:
                        raise
                    break  # a serial collided: sign again with fresh serials
        raise AssertionError("unreachable")  # pragma: no cover

    def _staged(self, request: IssuanceRequest, now: datetime) -> _Staged:
        try:
            signing, profile, template = self._decide(request, now)
        except PolicyError as refusal:
            return _Staged.of(request, Rejected(refusal.reason, refusal.detail), now)
        shard = signing.crl_shard(template.not_after)
        certificate = self._build(signing, profile, template, shard)
        record = CertificateRecord.issued(
            certificate, template.subject, template.sans, authority=signing.authority.label,
            profile=profile.name, issued_at=now, crl_shard=shard)
        return _Staged.of(request, Issued(record, certificate, signing.authority.full_chain),
                          now, template.claims)

    def _decide(
        self, request: IssuanceRequest, now: datetime
    ) -> tuple[_Signing, Profile, CertificateTemplate]:
        profile = self._profiles.get(request.profile)
        if profile is None:
            raise PolicyError(RefusalReason.UNKNOWN_PROFILE, f"unknown profile {request.profile!r}")
        signing = self._signing_for(request.authority)
        try:
            csr = decode_certification_request(request.csr)
            verify_csr(csr)
            sans = request.sans if request.sans is not None else requested_sans(csr)
        except DecodeError as exc:
            raise PolicyError(RefusalReason.MALFORMED_REQUEST, str(exc)) from exc
        except BadSignatureError as exc:
            raise PolicyError(RefusalReason.BAD_SIGNATURE, str(exc)) from exc
        self._check_binding(request, profile)
        template = decide(
            profile=profile, issuer=signing.authority, public_key=csr.public_key(),
            subject=request.subject if request.subject is not None else csr.subject,
            sans=sans, now=now, not_after=request.not_after,
        )
        return signing, profile, template.bound_to(request.component_digest)

    @staticmethod
    def _check_binding(request: IssuanceRequest, profile: Profile) -> None:
        if request.component_digest is not None and profile.kind != "device":
            raise PolicyError(RefusalReason.METHOD_NOT_ALLOWED,
                              f"component binding belongs in device certificates, not {profile.kind}")
        if profile.kind == API_CLIENT_KIND and request.method not in OPERATOR_METHODS:
            # An API-client certificate makes its holder a REST principal: never through
            # an enrollment route a registrar or a device can drive (docs/security.md).
            raise PolicyError(RefusalReason.METHOD_NOT_ALLOWED,
                              f"profile {profile.name} is issued only by the operator, "
                              f"not through {request.method}")

    def _signing_for(self, label: str) -> _Signing:
        cached = self._signing.get(label)
        if cached is not None:
            return cached
        with self._uow() as uow:
            authority = uow.authorities.get(label)
        if authority is None:
            raise PolicyError(RefusalReason.UNKNOWN_AUTHORITY, f"unknown authority {label!r}")
        if authority.key_ref is None or not authority.can_issue:
            raise PolicyError(
                RefusalReason.AUTHORITY_CANNOT_ISSUE, f"authority {label} holds no signing key"
            )
        signing = _Signing(authority, self._keys.load(authority.key_ref), self._urls)
        self._signing[label] = signing
        return signing

    def _build(
        self, signing: _Signing, profile: Profile, template: CertificateTemplate,
        shard: int | None,
    ) -> x509.Certificate:
        issuer = signing.authority.certificate
        builder = (
            x509.CertificateBuilder()
            .subject_name(template.subject)
            .issuer_name(issuer.subject)
            .public_key(template.public_key)
            .serial_number(new_serial())
            .not_valid_before(template.not_before)
            .not_valid_after(template.not_after)
        )
        for extension, critical in (
            *subject_extensions(profile, template.public_key, template.subject, template.sans),
            *signing.extensions,
        ):
            builder = builder.add_extension(extension, critical)
        if shard is not None:  # RFC 5280 §4.2.1.13: the CDP names the certificate's shard
            builder = builder.add_extension(*crl_distribution_points(
                signing.urls.crl(signing.authority.label, shard)))
        if template.component_digest is not None and profile.component_binding_oid is not None:
            builder = builder.add_extension(encode_component_binding(
                profile.component_binding_oid, template.component_digest), False)
        return builder.sign(signing.key, signing.hash)

    def _store(self, staged: Sequence[_Staged], now: datetime) -> None:
        """Certificates, audit entries and events of a batch: all or nothing. Everything
        but statements was prepared before (`_Staged`): this runs under the write lock."""
        issued = [s.outcome.record for s in staged if isinstance(s.outcome, Issued)]
        new_shards = self._new_shards(issued)
        with self._uow() as uow:
            for index, item in enumerate(staged):
                if isinstance(item.outcome, Issued):
                    # The issuing authority's organization, from the signing cache (issued
                    # outcomes always went through it): no query per certificate.
                    organization = self._signing[item.outcome.record.authority].authority.organization
                    kind = self._profiles[item.outcome.record.profile].kind
                    _check_in_transaction(uow, index, item, organization, now)
                    if kind != API_CLIENT_KIND:
                        _check_subject_free(uow, index, item.outcome)
            for item in staged:
                if item.request.attached is not None:
                    item.request.attached.write(uow, item.outcome)
            if issued:
                uow.certificates.add_many(issued)
            for authority, shard, expires_at in new_shards:
                uow.crl_shards.register(authority, shard, expires_at)
            append_audit_many(uow.audit, now, [s.audit for s in staged])
            self._link_devices(uow, staged, now)
            uow.events.add_many([s.event for s in staged])
            uow.commit()
        self._registered.update((a, s) for a, s, _ in new_shards)

    def _new_shards(self, issued: list[CertificateRecord]) -> list[tuple[str, int, datetime]]:
        """CRL shards this batch issues into that this process has not registered yet
        (a shard is registered once; the register is idempotent across nodes)."""
        shards: dict[tuple[str, int], datetime] = {}
        for record in issued:
            key = (record.authority, record.crl_shard)
            if record.crl_shard is None or key in self._registered or key in shards:
                continue
            window = self._signing[record.authority].shard_window
            assert window is not None
            shards[(record.authority, record.crl_shard)] = shard_expires_at(record.crl_shard,
                                                                             window)
        return [(a, s, at) for (a, s), at in shards.items()]

    def _link_devices(self, uow: UnitOfWork, staged: Sequence[_Staged], now: datetime) -> None:
        for request, outcome in ((s.request, s.outcome) for s in staged):
            if isinstance(outcome, Issued) and (request.device or request.presented):
                signing = self._signing[outcome.record.authority]
                link_issued(uow, IssuedIdentity(
                    request.device, request.presented, outcome.certificate, outcome.record,
                    self._profiles[outcome.record.profile].kind, signing.authority.organization,
                    request.registration is not None, request.requester), now)


def _check_in_transaction(uow: UnitOfWork, index: int, item: _Staged, organization: str,
                          now: datetime) -> None:
    """Checks whose answer must hold at commit: they run in the storing transaction."""
    request, outcome = item.request, item.outcome
    assert isinstance(outcome, Issued)
    try:
        # An organization issues only names in the operational domains it owns, whatever
        # the SAN type (`domain_claims`): "the domain is the authorization". The claims are
        # those of the certificate's subject and SANs, decided with its template.
        check_claims(uow.domains, item.claims, organization, outcome.record.authority)
    except PolicyError as refusal:
        raise _LateRefusal(index, refusal.reason, refusal.detail) from refusal
    if request.registration is not None and not uow.registrations.consume(
            request.registration, now, outcome.record.fingerprint):
        raise _LateRefusal(index, RefusalReason.REGISTRATION_CONSUMED,
                           f"registration {request.registration} was already used")


def _check_subject_free(uow: UnitOfWork, index: int, outcome: Issued) -> None:
    """A subject an API principal is bound to is never issued to anything else: the
    certificate would look like the principal's to whoever reads only the subject."""
    record = outcome.record
    if uow.principals.subject_reserved(record.subject, record.authority):
        raise _LateRefusal(index, RefusalReason.SUBJECT_NOT_ALLOWED,
                           f"subject {record.subject} is reserved for an API principal")


def _audit_and_event(
    request: IssuanceRequest, outcome: Issued | Rejected, now: datetime
) -> tuple[AuditRecord, Event]:
    """Every decision is audited: an issue with its certificate, a refusal with its reason."""
    if isinstance(outcome, Rejected):
        details = {"reason": outcome.reason.value, "detail": outcome.detail,
                   "profile": request.profile, "method": request.method,
                   "registration": request.registration}
        return (AuditRecord("certificate.issue", "refused", request.requester, request.authority,
                            details),
                Event("enrollment.refused", now, {"authority": request.authority, **details}))
    record = outcome.record
    target = f"{record.authority}:{record.serial_hex}"
    details = {"profile": record.profile, "subject": record.subject,
               "fingerprint": record.fingerprint, "method": request.method,
               "registration": request.registration}
    return (AuditRecord("certificate.issue", "success", request.requester, target, details),
            Event(_issued_event(request), now, {"certificate": target, **details}))


def _issued_event(request: IssuanceRequest) -> str:
    # A renewal (RFC 7030 §4.2.2 simplereenroll, RFC 9483 §4.1.3 kur) is announced as such.
    return ("certificate.renewed" if request.method is MethodName.CURRENT_CERTIFICATE
            else "certificate.issued")
