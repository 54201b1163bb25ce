"""ACME server state (RFC 8555 §7.1): accounts, orders, authorizations with their challenges,
nonces, and External Account Binding keys (§7.3.4); `core.ra.ports.ACMERepository` keeps them.

The state machine that moves these objects lives in the adapter (`protocols.acme`); the
core only names what is stored, so that several nodes share it through the database.

An EAB key belongs to one organization: an account created with it is bound to that
organization, and only such an account is authorized for names inside the organization's
operational domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# RFC 8555 §7.1.6 status values.
PENDING, READY, PROCESSING, VALID, INVALID = "pending", "ready", "processing", "valid", "invalid"
DEACTIVATED, REVOKED, EXPIRED = "deactivated", "revoked", "expired"


@dataclass(frozen=True)
class ACMEAccount:
    id: str
    label: str  # the endpoint the account was created on
    thumbprint: str  # RFC 7638 of the current account key
    jwk: dict[str, Any]
    status: str
    contact: tuple[str, ...]
    organization: str | None  # bound through External Account Binding
    eab_key_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ACMEChallenge:
    type: str  # http-01, dns-01, tls-alpn-01, device-attest-01
    token: str
    status: str = PENDING
    validated: datetime | None = None
    error: dict[str, Any] | None = None
    evidence: tuple[str, ...] = ()  # device-attest-01: the attested chain, base64 DER
    method: str | None = None  # device-attest-01: the enrollment method that decided it


@dataclass(frozen=True)
class ACMEAuthorization:
    id: str
    account_id: str
    label: str
    identifier_type: str
    identifier_value: str
    status: str
    expires: datetime
    challenges: tuple[ACMEChallenge, ...]
    created_at: datetime


@dataclass(frozen=True)
class ACMEOrder:
    id: str
    account_id: str
    label: str
    status: str
    identifiers: tuple[tuple[str, str], ...]  # (type, value)
    authorizations: tuple[str, ...]
    expires: datetime
    created_at: datetime
    certificate: str | None = None  # fingerprint of the issued certificate
    error: dict[str, Any] | None = None
    replaces: str | None = None  # RFC 9773 §5


@dataclass(frozen=True)
class EABKey:
    key_id: str
    organization: str
    sealed_key: bytes = field(repr=False)  # the HMAC key, sealed (SecretSealer)
    created_at: datetime
    label: str | None = None  # an endpoint label, or None: any ACME endpoint
    account_id: str | None = None  # the account it was used for (one account per key)
