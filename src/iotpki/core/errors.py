"""Semantic errors of the core. Adapters map them to their wire form (never HTTP codes here).

Every refusal, whatever refuses (issuance policy, an enrollment method, server-side key
generation, a manifest import), is a `PolicyError` carrying one `RefusalReason`. Each
protocol adapter maps every reason to its wire form (`protocols/est/routes.py`,
`protocols/cmp/refusals.py`, `protocols/rest/problems.py`), each map tested for totality.
"""

from __future__ import annotations

from enum import StrEnum

from iotpki.wire.errors import PKIError


class RefusalReason(StrEnum):
    """Why a request was refused; recorded in the audit log and mapped by each adapter."""

    MALFORMED_REQUEST = "malformed-request"
    BAD_SIGNATURE = "bad-signature"
    UNSUPPORTED_KEY = "unsupported-key"
    KEY_NOT_ALLOWED = "key-not-allowed"
    SUBJECT_NOT_ALLOWED = "subject-not-allowed"
    SAN_NOT_ALLOWED = "san-not-allowed"
    WILDCARD = "wildcard"
    VALIDITY_EXCEEDS_ISSUER = "validity-exceeds-issuer"
    VALIDITY_EXCEEDS_PROFILE = "validity-exceeds-profile"
    UNKNOWN_PROFILE = "unknown-profile"
    UNKNOWN_AUTHORITY = "unknown-authority"
    AUTHORITY_CANNOT_ISSUE = "authority-cannot-issue"
    NAME_CONSTRAINTS = "name-constraints"
    DOMAIN_NOT_OWNED = "domain-not-owned"
    # Enrollment methods (who may ask), beyond what the profile allows:
    NO_CLIENT_IDENTITY = "no-client-identity"
    NOT_REGISTERED = "not-registered"
    REGISTRATION_CONSUMED = "registration-consumed"
    REGISTRATION_EXPIRED = "registration-expired"
    UNTRUSTED_CHAIN = "untrusted-chain"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation-unknown"
    CERTIFICATE_EXPIRED = "certificate-expired"
    POSSESSION_NOT_PROVEN = "possession-not-proven"
    BAD_SECRET = "bad-secret"
    REGISTRATION_LOCKED = "registration-locked"  # too many wrong secrets; an operator unlocks
    TOO_MANY_ATTEMPTS = "too-many-attempts"  # this client guessed too often; retry later
    APPROVAL_QUEUE_FULL = "approval-queue-full"  # too many requests await an operator
    IDENTITY_MISMATCH = "identity-mismatch"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    KEY_ENCRYPTION_UNAVAILABLE = "key-encryption-unavailable"  # RFC 7030 §4.4.1: cannot encrypt
    # Manifest imports (`core.supply_chain.manifests`):
    MANIFEST_MALFORMED = "malformed"
    MANIFEST_EXPIRED = "expired"
    REPLAYED = "replayed"
    WRONG_RECIPIENT = "wrong-recipient"
    UNTRUSTED_SUPPLIER = "untrusted-supplier"
    SIGNER_REVOKED = "signer-revoked"
    NOT_A_SIGNER = "not-a-signer"
    BAD_TARGET = "bad-target"


class PolicyError(PKIError):
    """A refused request, with its reason; nothing was issued or imported. The one base of
    every refusal (`ManifestRefused`, `KeyDeliveryError` are kinds of it)."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class NotFoundError(PKIError):
    """A named object (authority, certificate, profile) that does not exist."""


class ConflictError(PKIError):
    """An object that already exists, or a state change that is not allowed now."""


class ConfigurationError(PKIError):
    """A profile file or setting that is invalid; raised when it is loaded."""


class AuthenticationError(PKIError):
    """Credentials that identify no active principal."""


class AccessDeniedError(PKIError):
    """An authenticated principal whose role does not allow the action."""
