"""API principals: an integrator of one organization with one role (see `principal_service`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

KEY_PREFIX = "iotpki"


class Role(StrEnum):
    ADMIN = "admin"  # everything within its organization
    REGISTRAR = "registrar"  # registrations and manifests
    OPERATOR = "operator"  # lifecycle events, revocation
    AUDITOR = "auditor"  # read-only, including the audit log


class PrincipalKind(StrEnum):
    API_KEY = "api-key"
    CERTIFICATE = "certificate"


@dataclass(frozen=True)
class Principal:
    id: str
    organization: str
    role: Role
    name: str
    kind: PrincipalKind
    created_at: datetime
    created_by: str
    key_hash: str | None = field(default=None, repr=False)
    certificate_fingerprint: str | None = None
    certificate_subject: str | None = None  # RFC 4514, with certificate_authority
    certificate_authority: str | None = None
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How the principal appears in the audit log."""
        return f"principal:{self.id}@{self.organization}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedPrincipal:
    principal: Principal
    api_key: str | None  # shown once
