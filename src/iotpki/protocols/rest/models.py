"""Request and response bodies, and their conversion from core objects.

Secrets appear only in the one response that creates them (a registration's one-time
secret); private keys and hashes never do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from iotpki.core.audit.log import AuditEntry
from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.profile import Profile, parse_duration
from iotpki.core.ra.registration import Registration, RegistrationMethod, RegistrationStatus
from iotpki.core.revocation.reasons import REASONS
from iotpki.core.supply_chain.domain import Domain
from iotpki.core.supply_chain.organization import Organization
from iotpki.wire.chain import encode_pem_chain
from iotpki.wire.names import format_san

LABEL = r"^[a-z0-9][a-z0-9-]{0,62}$"
FINGERPRINT = r"^[0-9a-fA-F:]{64,95}$"
SERIAL = r"^(0x)?[0-9a-fA-F:]{1,64}$"
DURATION = r"^[1-9][0-9]{0,5}[hdy]$"
Label = Annotated[str, Field(pattern=LABEL, description="lowercase letters, digits, dashes")]


class Strict(BaseModel):
    """Request bodies: unknown fields are a mistake, not something to ignore silently."""

    model_config = ConfigDict(extra="forbid")


# -- directory -------------------------------------------------------------------------------

class OrganizationOut(BaseModel):
    label: str
    name: str
    created_at: datetime


class DomainOut(BaseModel):
    name: str
    organization: str
    created_at: datetime


class AuthorityOut(BaseModel):
    label: str
    organization: str
    kind: str
    subject: str
    serial: str
    not_before: datetime
    not_after: datetime
    parent: str | None
    can_issue: bool
    certificate_pem: str = Field(description="This CA's certificate and its chain, PEM")


class ProfileOut(BaseModel):
    name: str
    kind: str
    description: str
    validity_days: float
    key_types: list[str]
    key_usage: list[str]
    extended_key_usage: list[str]


def organization_out(o: Organization) -> OrganizationOut:
    return OrganizationOut(label=o.label, name=o.name, created_at=o.created_at)


def domain_out(d: Domain) -> DomainOut:
    return DomainOut(name=d.name, organization=d.organization, created_at=d.created_at)


def authority_out(a: Authority) -> AuthorityOut:
    cert = a.certificate
    return AuthorityOut(
        label=a.label, organization=a.organization, kind=a.kind.value,
        subject=cert.subject.rfc4514_string(), serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        parent=a.parent, can_issue=a.can_issue,
        certificate_pem=encode_pem_chain(list(a.full_chain)).decode())


def profile_out(p: Profile) -> ProfileOut:
    return ProfileOut(name=p.name, kind=p.kind, description=p.description,
                      validity_days=p.validity.total_seconds() / 86400,
                      key_types=list(p.key_types), key_usage=list(p.key_usage),
                      extended_key_usage=list(p.extended_key_usage))


# -- registrations -----------------------------------------------------------------------------

class RegistrationCreate(Strict):
    authority: Label = Field(description="The organization's issuing authority")
    profile: str = Field(min_length=1, max_length=63)
    method: RegistrationMethod
    subject: str | None = Field(default=None, max_length=1024,
                                description="Approved subject, RFC 4514 (else the CSR's)")
    sans: list[Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None, max_length=64, description="Approved SANs as type:value (dns:, ip:, uri:)")
    domain: str | None = Field(default=None, max_length=253,
                               description="Adds SAN urn:iotpki:domain:<domain>")
    identity_fingerprint: str | None = Field(default=None, pattern=FINGERPRINT)
    identity_issuer: str | None = Field(default=None, max_length=1024)
    identity_serial: str | None = Field(default=None, pattern=SERIAL)
    lifetime: str = Field(default="30d", pattern=DURATION, description="e.g. 24h, 30d, 1y")
    component_id: str | None = Field(default=None, max_length=255)
    reference: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="A reusable credential's name: the client's CMP senderKID (or EST user "
                    "name); one-time-secret only")
    uses: int = Field(default=1, ge=1, le=1_000_000,
                      description="How many issuances the secret authorizes")
    may_revoke: bool = Field(default=False, description="The secret may also revoke the "
                             "certificates it could have issued (CMP rr, RFC 9483 §4.2)")


class ChallengeCreate(Strict):
    """A dynamic SCEP challenge (docs/scep.md): a single-use one-time secret for one device,
    bound to the subject and SANs it must get, expiring soon."""

    authority: Label = Field(description="The organization's issuing authority")
    profile: str = Field(min_length=1, max_length=63)
    subject: str | None = Field(default=None, max_length=1024,
                                description="The subject the certificate gets, RFC 4514")
    sans: list[Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None, max_length=64, description="The SANs it gets, as type:value")
    domain: str | None = Field(default=None, max_length=253,
                               description="Adds SAN urn:iotpki:domain:<domain>")
    lifetime: str = Field(default="1h", pattern=DURATION,
                          description="How long the challenge may be used, at most 24h")

    @model_validator(mode="after")
    def _bound(self) -> ChallengeCreate:
        if self.subject is None and not self.sans and self.domain is None:
            raise ValueError("a challenge is bound to a subject or SANs: give subject, sans "
                             "or domain")
        if parse_duration(self.lifetime) > timedelta(hours=24):
            raise ValueError("a challenge lives at most 24h")
        return self


class RegistrationBulkCreate(Strict):
    registrations: list[RegistrationCreate] = Field(min_length=1, max_length=1000)


class RegistrationOut(BaseModel):
    id: str
    organization: str
    authority: str
    profile: str
    method: RegistrationMethod
    status: RegistrationStatus
    subject: str | None
    sans: list[str] | None
    identity_fingerprint: str | None
    identity_issuer: str | None
    identity_serial: str | None
    expires_at: datetime
    created_at: datetime
    created_by: str
    consumed_at: datetime | None
    certificate: str | None = Field(description="Fingerprint of the certificate it produced")
    manifest: str | None
    component_id: str | None
    reference: str | None = None
    uses_allowed: int = 1
    uses: int = 0
    failed_secrets: int = Field(default=0, description="Wrong secrets presented for it")
    locked_at: datetime | None = Field(default=None, description="Locked after too many "
                                       "wrong secrets; POST .../unlock to use it again")
    may_revoke: bool = False


class RegistrationCreated(RegistrationOut):
    secret: str | None = Field(description="The one-time secret (one-time-secret method); "
                                           "shown only in this response")


class ChallengeCreated(RegistrationOut):
    challenge: str = Field(description="The SCEP challengePassword, `<id>:<secret>`; shown "
                                       "only in this response")


class RegistrationsCreated(BaseModel):
    items: list[RegistrationCreated]


def registration_out(r: Registration) -> dict[str, Any]:
    return {
        "id": r.id, "organization": r.organization, "authority": r.authority,
        "profile": r.profile, "method": r.method, "status": r.status,
        "subject": r.subject.rfc4514_string() if r.subject is not None else None,
        "sans": [format_san(n) for n in r.sans] if r.sans is not None else None,
        "identity_fingerprint": r.identity_fingerprint, "identity_issuer": r.identity_issuer,
        "identity_serial": r.identity_serial, "expires_at": r.expires_at,
        "created_at": r.created_at, "created_by": r.created_by, "consumed_at": r.consumed_at,
        "certificate": r.certificate, "manifest": r.manifest, "component_id": r.component_id,
        "reference": r.reference, "uses_allowed": r.uses_allowed, "uses": r.uses,
        "failed_secrets": r.failed_secrets, "locked_at": r.locked_at,
        "may_revoke": r.may_revoke,
    }


# -- manifests ---------------------------------------------------------------------------------

class ManifestExport(Strict):
    recipient: Label = Field(description="The receiving organization")
    authority: Label = Field(description="List good certificates of this authority ...")
    profile: str | None = Field(default=None, max_length=63, description="... of this profile")
    fingerprints: list[Annotated[str, Field(pattern=FINGERPRINT)]] | None = Field(
        default=None, min_length=1, max_length=100_000,
        description="... or exactly these certificates (of that authority)")
    lifetime: str = Field(default="30d", pattern=DURATION)
    delivery_id: str | None = Field(default=None, min_length=1, max_length=128,
                                    pattern=r"^[A-Za-z0-9._:-]+$")


class ManifestExported(BaseModel):
    delivery_id: str
    entries: int
    manifest: str = Field(description="CMS SignedData (DER), base64")


class ManifestImport(Strict):
    manifest: str = Field(min_length=4, max_length=200_000_000,
                          description="CMS SignedData (DER), base64")
    authority: Label = Field(description="The authority that issues the next identities")
    profile: str = Field(min_length=1, max_length=63)
    domain: str | None = Field(default=None, max_length=253)
    lifetime: str = Field(default="365d", pattern=DURATION)


class ManifestImported(BaseModel):
    delivery_id: str
    sender: str
    entries: int


# -- certificates ------------------------------------------------------------------------------

class CertificateOut(BaseModel):
    authority: str
    serial: str
    subject: str
    sans: list[str]
    profile: str
    status: CertificateStatus
    not_before: datetime
    not_after: datetime
    fingerprint: str
    issued_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


class CertificateDetail(CertificateOut):
    pem: str


def certificate_out(r: CertificateRecord) -> dict[str, Any]:
    return {
        "authority": r.authority, "serial": r.serial_hex, "subject": r.subject,
        "sans": list(r.sans), "profile": r.profile, "status": r.status,
        "not_before": r.not_before, "not_after": r.not_after, "fingerprint": r.fingerprint,
        "issued_at": r.issued_at, "revoked_at": r.revoked_at,
        "revocation_reason": r.revocation_reason,
    }


def certificate_detail(r: CertificateRecord) -> CertificateDetail:
    pem = r.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return CertificateDetail(**certificate_out(r), pem=pem)


REASON_DOC = f"RFC 5280 §5.3.1 reason: one of {', '.join(REASONS)}"


class Revoke(Strict):
    reason: str = Field(default="unspecified", max_length=32, description=REASON_DOC)
    invalidity_date: AwareDatetime | None = Field(
        default=None, description="When the key was (suspected) compromised, RFC 5280 §5.3.2")


class CertificateFilter(Strict):
    status: CertificateStatus | None = None
    authority: Label | None = None
    profile: str | None = Field(default=None, max_length=63)
    expiring_before: AwareDatetime | None = None
    subject: str | None = Field(default=None, min_length=1, max_length=1024,
                                description="Substring of the subject")


class BulkRevoke(Strict):
    filter: CertificateFilter = Field(description="The same filters as the certificate list; "
                                                  "at least one")
    reason: str = Field(default="unspecified", max_length=32, description=REASON_DOC)
    invalidity_date: AwareDatetime | None = None


class BulkRevoked(BaseModel):
    revoked: int = Field(description="Certificates whose status changed")
    reason: str
    at: datetime


# -- audit -------------------------------------------------------------------------------------

class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    action: str
    outcome: str
    actor: str
    target: str
    details: dict[str, Any]
    hash: str


def audit_out(e: AuditEntry) -> AuditEntryOut:
    r = e.record
    return AuditEntryOut(seq=e.seq, at=e.at, action=r.action, outcome=r.outcome, actor=r.actor,
                         target=r.target, details=dict(r.details), hash=e.hash)
