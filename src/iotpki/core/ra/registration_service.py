"""The RA: creating, listing and cancelling registrations (each audited)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography import x509

from iotpki.core.audit.log import AuditRecord, append_audit, append_audit_many
from iotpki.core.ca.profile import API_CLIENT_KIND, Profile
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError, PolicyError
from iotpki.core.keyring import SecretSealer
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.enrollment import registration_for_secret
from iotpki.core.ra.ports import BulkIdentities
from iotpki.core.ra.registration import (
    MAX_USES,
    Registration,
    RegistrationMethod,
    RegistrationStatus,
    check_reference,
    hash_secret,
    identity_key,
    new_registration_id,
    new_registration_ids,
    new_secret,
)
from iotpki.core.supply_chain.domain import domain_uri
from iotpki.core.supply_chain.domain_claims import canonical_sans, check_claims, claims_of
from iotpki.wire.errors import PKIError
from iotpki.wire.names import parse_subject

if TYPE_CHECKING:  # the ASN.1 of manifests is not needed to create registrations
    from iotpki.wire.manifest import ManifestEntry

DEFAULT_LIFETIME = timedelta(days=30)
Progress = Callable[[int, int], None]


@lru_cache(maxsize=1024)
def normalized_name(text: str) -> str:
    """RFC 4514 text as `cryptography` writes it; a manifest repeats a few issuers a million
    times, hence the cache."""
    return parse_subject(text).rfc4514_string()


@dataclass(frozen=True)
class RegistrationSpec:
    """What an RA principal asks for; `create` checks it against profiles and domains."""

    organization: str
    authority: str
    profile: str
    method: RegistrationMethod
    subject: x509.Name | None = None
    sans: tuple[x509.GeneralName, ...] | None = None
    domain: str | None = None  # adds the SAN URI urn:iotpki:domain:<domain>
    identity_fingerprint: str | None = None
    identity_issuer: str | None = None
    identity_serial: str | None = None
    lifetime: timedelta = DEFAULT_LIFETIME
    manifest: str | None = None
    component_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None  # a reusable credential's name (one-time-secret only)
    uses: int = 1  # how many issuances it authorizes (more than one: one-time-secret only)


def _bulk_identities(entries: Sequence[ManifestEntry]) -> BulkIdentities:
    fingerprints = [entry.fingerprint.lower() for entry in entries]
    return BulkIdentities(
        ids=new_registration_ids(len(entries)), keys=fingerprints, fingerprints=fingerprints,
        issuers=[normalized_name(entry.issuer) for entry in entries],
        serials=[entry.serial.lower().lstrip("0") for entry in entries],
        component_ids=[entry.component_id for entry in entries],
        attributes_json=_attributes_column(entries))


def _attributes_column(entries: Sequence[ManifestEntry]) -> list[str]:
    """Each entry's attributes as canonical JSON; entries repeat their neighbour's (one lot,
    one product), which is encoded once per run."""
    column = []
    last: tuple[Mapping[str, Any], str] | None = None
    for entry in entries:
        if last is None or entry.attributes != last[0]:
            last = (entry.attributes, _attributes_json(entry.attributes))
        column.append(last[1])
    return column


_ATTRIBUTES: dict[Any, str] = {}


def _attributes_json(attributes: Mapping[str, Any]) -> str:
    """Canonical JSON; manifests repeat a few attribute sets (lot, product) many times."""
    try:
        key = frozenset(attributes.items())
    except TypeError:  # nested values: not hashable, encode each time
        return json.dumps(attributes, sort_keys=True)
    cached = _ATTRIBUTES.get(key)
    if cached is None:
        if len(_ATTRIBUTES) > 4096:
            _ATTRIBUTES.clear()
        cached = _ATTRIBUTES[key] = json.dumps(attributes, sort_keys=True)
    return cached


@dataclass(frozen=True)
class CreatedRegistration:
    registration: Registration
    secret: str | None  # shown once; only its hash is stored


class RegistrationService:
    def __init__(self, uow: UnitOfWorkFactory, profiles: Mapping[str, Profile], clock: Clock,
                 sealer: SecretSealer | None = None,
                 reads: UnitOfWorkFactory | None = None) -> None:
        self._uow = uow
        self._reads = reads or uow  # look-ups: never SQLite's write lock (issue 21)
        self._profiles = profiles
        self._clock = clock
        self._sealer = sealer  # None: secrets only hashed (no CMP MAC protection)

    def create(self, spec: RegistrationSpec, actor: str) -> CreatedRegistration:
        return self.create_many([spec], actor)[0]

    def create_many(self, specs: Sequence[RegistrationSpec], actor: str) -> list[CreatedRegistration]:
        """All or none, in one transaction (bulk creation from a manifest or a CRM export)."""
        with self._uow() as uow:
            created = self.create_in(uow, specs, actor)
            uow.commit()
        return created

    def check_many(self, specs: Sequence[RegistrationSpec], actor: str) -> list[str | None]:
        """What `create_many` would refuse, spec by spec (None: accepted), writing nothing:
        each spec is built in one transaction that is rolled back, after the specs before it
        (so a reference repeated in the batch is refused where it repeats). A bulk upload
        reports every bad line this way before it writes any."""
        problems: list[str | None] = []
        with self._uow() as uow:  # never committed
            for spec in specs:
                try:
                    self.create_in(uow, [spec], actor, audit=False)
                    problems.append(None)
                except PKIError as exc:
                    problems.append(str(exc))
        return problems

    def refuse_upload(self, actor: str, organization: str, lines: int, bad: int) -> None:
        """A bulk upload with bad lines writes nothing; the refusal is audited."""
        with self._uow() as uow:
            append_audit(uow.audit, self._clock.now(), AuditRecord(
                "registration.upload", "refused", actor, organization,
                {"organization": organization, "lines": lines, "bad_lines": bad}))
            uow.commit()

    def create_in(self, uow: UnitOfWork, specs: Sequence[RegistrationSpec],
                  actor: str, audit: bool = True) -> list[CreatedRegistration]:
        now = self._clock.now()
        checked: set[tuple[str, str]] = set()
        owners: dict[str, str | None] = {}  # domain → owner, looked up once per batch
        created = []
        for spec in specs:
            if (spec.organization, spec.authority) not in checked:
                self._check_owner(uow, spec)
                checked.add((spec.organization, spec.authority))
            created.append(self._build(uow, spec, now, actor, owners))
        uow.registrations.add_many([c.registration for c in created])
        if not audit:
            return created  # the caller audits the batch as one decision (a manifest import)
        append_audit_many(uow.audit, now, [AuditRecord(
            "registration.create", "success", actor, c.registration.id,
            {"organization": c.registration.organization, "profile": c.registration.profile,
             "method": c.registration.method.value, "authority": c.registration.authority,
             "identity": c.registration.identity_fingerprint or c.registration.identity_serial,
             "manifest": c.registration.manifest}) for c in created])
        return created

    def create_from_manifest(
        self, uow: UnitOfWork, template: RegistrationSpec, entries: Sequence[ManifestEntry],
        actor: str, progress: Progress | None = None, chunk: int = 20_000,
    ) -> int:
        """One previous-stage registration per manifest entry, inside the caller's transaction.

        The template is checked once (authority owner, profile, domain); the entries then go
        in as bulk inserts, since a manifest may list a million identities."""
        self._check_owner(uow, template)
        shared = self._build(uow, replace(template, identity_fingerprint="0" * 64),
                             self._clock.now(), actor, {}).registration
        for start in range(0, len(entries), chunk):
            uow.registrations.add_bulk(shared, _bulk_identities(entries[start:start + chunk]))
            if progress is not None:
                progress(min(start + chunk, len(entries)), len(entries))
        return len(entries)

    def _check_owner(self, uow: UnitOfWork, spec: RegistrationSpec) -> None:
        authority = uow.authorities.get(spec.authority)
        if authority is None:
            raise NotFoundError(f"unknown authority {spec.authority!r}")
        if authority.organization != spec.organization:
            raise ConfigurationError(
                f"authority {spec.authority} belongs to {authority.organization}, "
                f"not {spec.organization}")

    def _build(self, uow: UnitOfWork, spec: RegistrationSpec, now: datetime, actor: str,
               owners: dict[str, str | None]) -> CreatedRegistration:
        if spec.profile not in self._profiles:
            raise NotFoundError(f"unknown profile {spec.profile!r}")
        self._check_principal_names(uow, spec)
        sans = spec.sans
        if spec.domain is not None:
            sans = (*(sans or ()), domain_uri(spec.domain))
        self._check_domains(uow, spec, sans, owners)
        secret = secret_hash = key = issuer = serial = fingerprint = None
        sealed = None
        if spec.method is RegistrationMethod.PREVIOUS_STAGE:
            fingerprint = (spec.identity_fingerprint or "").lower().replace(":", "") or None
            issuer = normalized_name(spec.identity_issuer) if spec.identity_issuer else None
            serial = (spec.identity_serial or "").lower().lstrip("0") or None
            try:
                key = identity_key(fingerprint, issuer, serial)
            except ValueError as exc:
                raise ConfigurationError(f"a previous-stage registration: {exc}") from exc
        _check_reuse(uow, spec)
        if spec.method is RegistrationMethod.ONE_TIME_SECRET:
            secret = new_secret()
            secret_hash = hash_secret(secret)
            sealed = self._sealer.seal(secret.encode()) if self._sealer is not None else None
        registration = Registration(
            id=new_registration_id(), organization=spec.organization, authority=spec.authority,
            profile=spec.profile, method=spec.method, expires_at=now + spec.lifetime,
            created_at=now, created_by=actor, subject=spec.subject, sans=sans,
            identity_fingerprint=fingerprint, identity_issuer=issuer, identity_serial=serial,
            identity_key=key, secret_hash=secret_hash, secret_sealed=sealed, manifest=spec.manifest,
            component_id=spec.component_id, attributes=dict(spec.attributes),
            reference=spec.reference, uses_allowed=spec.uses)
        return CreatedRegistration(registration, secret)

    def _check_principal_names(self, uow: UnitOfWork, spec: RegistrationSpec) -> None:
        """A registration never leads to a REST principal's certificate (docs/security.md)."""
        if self._profiles[spec.profile].kind == API_CLIENT_KIND:
            raise ConfigurationError(f"profile {spec.profile} is issued only by the operator, "
                                     "never through a registration")
        if spec.subject is not None and uow.principals.subject_reserved(
                spec.subject.rfc4514_string(), spec.authority):
            raise ConfigurationError(f"subject {spec.subject.rfc4514_string()} is reserved "
                                     "for an API principal")

    @staticmethod
    def _check_domains(uow: UnitOfWork, spec: RegistrationSpec,
                       sans: tuple[x509.GeneralName, ...] | None,
                       owners: dict[str, str | None]) -> None:
        """Refuse now what issuance would refuse (`domain_claims`): a registration never
        approves a name in another organization's domain."""
        organization = spec.organization
        try:
            claims = claims_of(spec.subject or x509.Name([]), canonical_sans(sans or ()))
        except PolicyError as exc:
            raise ConfigurationError(exc.detail) from exc
        for name in claims.members:
            if name not in owners:  # looked up once per batch
                owners[name] = uow.domains.owner(name)
            if owners[name] != organization:
                raise ConfigurationError(f"organization {organization} does not own domain {name}")
        try:
            check_claims(uow.domains, replace(claims, members=frozenset()), organization,
                         spec.authority)
        except PolicyError as exc:
            raise ConfigurationError(exc.detail) from exc

    def get(self, registration_id: str) -> Registration:
        with self._uow() as uow:
            registration = uow.registrations.get(registration_id)
        if registration is None:
            raise NotFoundError(f"unknown registration {registration_id!r}")
        return registration

    def for_secret(self, name: str) -> Registration | None:
        """The secret registration a client names (CMP senderKID): its id, or the reference
        of a reusable credential."""
        with self._reads() as uow:
            return registration_for_secret(uow, name)

    def find(self, organization: str | None = None, status: RegistrationStatus | None = None,
             limit: int = 100, offset: int = 0,
             after: tuple[datetime, str] | None = None) -> list[Registration]:
        """Oldest first (`after`: a keyset page after (created_at, id))."""
        with self._uow() as uow:
            return uow.registrations.find(organization, status.value if status else None,
                                          limit, offset, after)

    def cancel(self, registration_id: str, actor: str) -> Registration:
        with self._uow() as uow:
            if not uow.registrations.cancel(registration_id):
                current = uow.registrations.get(registration_id)
                if current is None:
                    raise NotFoundError(f"unknown registration {registration_id!r}")
                raise ConflictError(f"registration {registration_id} is {current.status.value}")
            append_audit(uow.audit, self._clock.now(), AuditRecord(
                "registration.cancel", "success", actor, registration_id,
                {"organization": _organization_of(uow, registration_id)}))
            uow.commit()
        return self.get(registration_id)


    def unlock(self, registration_id: str, actor: str) -> Registration:
        """An operator lets a registration locked after wrong secrets be used again; its
        count of wrong secrets starts over (issue 15 item 10)."""
        with self._uow() as uow:
            current = uow.registrations.get(registration_id)
            if current is None:
                raise NotFoundError(f"unknown registration {registration_id!r}")
            uow.registrations.unlock(registration_id)
            append_audit(uow.audit, self._clock.now(), AuditRecord(
                "registration.unlock", "success", actor, registration_id,
                {"organization": current.organization,
                 "failed_secrets": current.failed_secrets,
                 "was_locked": current.locked_at is not None}))
            uow.commit()
        return self.get(registration_id)


def _check_reuse(uow: UnitOfWork, spec: RegistrationSpec) -> None:
    """A reference and more than one use belong to secret registrations (a shared secret
    that many devices of a line or batch present); one open registration per reference."""
    if spec.reference is None and spec.uses == 1:
        return
    if spec.method is not RegistrationMethod.ONE_TIME_SECRET:
        raise ConfigurationError("a reference or several uses need the one-time-secret method")
    if not 1 <= spec.uses <= MAX_USES:
        raise ConfigurationError(f"uses must be 1 to {MAX_USES}")
    if spec.reference is None:
        return
    try:
        check_reference(spec.reference)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    current = uow.registrations.by_reference(spec.reference)
    if current is not None and current.status is RegistrationStatus.OPEN:
        raise ConflictError(f"registration {current.id} is open under reference "
                            f"{spec.reference!r}; cancel it first")


def _organization_of(uow: UnitOfWork, registration_id: str) -> str | None:
    registration = uow.registrations.get(registration_id)
    return registration.organization if registration is not None else None
