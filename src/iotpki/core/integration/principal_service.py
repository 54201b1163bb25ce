"""API principals (`core.integration.principal`): creating, revoking and authenticating them.

Who an integrator is (an organization and a role), and how it proves it.

Two kinds of credential:
- an API key `iotpki_<id>_<secret>`: the id finds the principal, the secret is checked
  against its stored SHA-256 in constant time. A key is 256 random bits, so a fast hash is
  enough (no password stretching); the key itself is shown once and never stored.
- a TLS client certificate, bound either to one certificate (SHA-256 fingerprint) or to a
  subject issued by one of the organization's hosted authorities: any certificate with
  that subject, directly issued by that CA, recorded here with a profile of kind
  `api-client`, valid now and not revoked. Only the operator issues `api-client`
  certificates, and no other certificate is issued with a subject a principal is bound
  to, so a registration or an enrollment can never mint a principal's certificate
  (docs/security.md).

Creating and revoking principals is audited; refused authentications are not (they are
answered 401 and would let anyone fill the log).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.profile import API_CLIENT_KIND, Profile
from iotpki.core.clock import Clock
from iotpki.core.errors import AuthenticationError, ConfigurationError, ConflictError, NotFoundError
from iotpki.core.integration.principal import KEY_PREFIX, CreatedPrincipal, Principal, PrincipalKind, Role
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.wire.names import parse_subject


def new_principal_id() -> str:
    return secrets.token_hex(8)


def hash_key_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(key: str) -> tuple[str, str]:
    """(principal id, secret); `AuthenticationError` if it is not shaped like our keys."""
    prefix, _, rest = key.partition("_")
    principal_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not principal_id or not secret:
        raise AuthenticationError("not an iotpki API key (iotpki_<id>_<secret>)")
    return principal_id, secret


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


class PrincipalService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 profiles: Mapping[str, Profile] | None = None) -> None:
        self._uow = uow
        self._clock = clock
        # Profiles of kind api-client: the only ones a subject binding accepts.
        self._api_profiles = frozenset(
            name for name, p in (profiles or {}).items() if p.kind == API_CLIENT_KIND)

    # -- creating and revoking -------------------------------------------------------------

    def create_api_key(self, organization: str, role: Role, name: str,
                       actor: str) -> CreatedPrincipal:
        principal_id = new_principal_id()
        secret = secrets.token_urlsafe(32)
        principal = Principal(principal_id, organization, role, name, PrincipalKind.API_KEY,
                              self._clock.now(), actor, key_hash=hash_key_secret(secret))
        self._add(principal, actor)
        return CreatedPrincipal(principal, f"{KEY_PREFIX}_{principal_id}_{secret}")

    def create_certificate_principal(
        self, organization: str, role: Role, name: str, actor: str, *,
        fingerprint: str | None = None, subject: str | None = None,
        authority: str | None = None,
    ) -> Principal:
        """Bound to one certificate (fingerprint), or to a subject issued by `authority`."""
        if (fingerprint is None) == (subject is None):
            raise ConfigurationError("bind a certificate principal to a fingerprint or a subject")
        if subject is not None and authority is None:
            raise ConfigurationError("a subject binding names the authority that issues it")
        principal = Principal(
            new_principal_id(), organization, role, name, PrincipalKind.CERTIFICATE,
            self._clock.now(), actor,
            certificate_fingerprint=fingerprint.lower().replace(":", "") if fingerprint else None,
            certificate_subject=parse_subject(subject).rfc4514_string()
            if subject else None, certificate_authority=authority)
        self._add(principal, actor)
        return principal

    def _add(self, principal: Principal, actor: str) -> None:
        with self._uow() as uow:
            self._check_organization(uow, principal)
            uow.principals.add(principal)
            append_audit(uow.audit, principal.created_at, AuditRecord(
                "principal.create", "success", actor, principal.id,
                {"organization": principal.organization, "role": principal.role.value,
                 "name": principal.name, "kind": principal.kind.value,
                 "fingerprint": principal.certificate_fingerprint,
                 "subject": principal.certificate_subject,
                 "authority": principal.certificate_authority}))
            uow.commit()

    @staticmethod
    def _check_organization(uow: UnitOfWork, principal: Principal) -> None:
        if uow.organizations.get(principal.organization) is None:
            raise NotFoundError(f"unknown organization {principal.organization!r}")
        if principal.certificate_authority is not None:
            authority = uow.authorities.get(principal.certificate_authority)
            if authority is None or authority.organization != principal.organization:
                raise ConfigurationError(
                    f"authority {principal.certificate_authority!r} is not one of "
                    f"{principal.organization}'s")

    def revoke(self, principal_id: str, actor: str) -> Principal:
        now = self._clock.now()
        with self._uow() as uow:
            current = uow.principals.get(principal_id)
            if current is None:
                raise NotFoundError(f"unknown principal {principal_id!r}")
            if not current.active:
                raise ConflictError(f"principal {principal_id} is revoked already")
            uow.principals.revoke(principal_id, now)
            append_audit(uow.audit, now, AuditRecord(
                "principal.revoke", "success", actor, principal_id,
                {"organization": current.organization}))
            uow.commit()
            revoked = uow.principals.get(principal_id)
        assert revoked is not None
        return revoked

    def get(self, principal_id: str, organization: str | None = None) -> Principal:
        """One principal; another organization's is reported unknown, like a missing one."""
        with self._uow() as uow:
            principal = uow.principals.get(principal_id)
        if principal is None or organization not in (None, principal.organization):
            raise NotFoundError(f"unknown principal {principal_id!r}")
        return principal

    def list(self, organization: str | None = None) -> list[Principal]:
        with self._uow() as uow:
            return uow.principals.list(organization)

    # -- authenticating --------------------------------------------------------------------

    def authenticate_key(self, key: str) -> Principal:
        principal_id, secret = split_api_key(key)
        with self._uow() as uow:
            principal = uow.principals.get(principal_id)
        stored = principal.key_hash if principal is not None else None
        # Compare even for an unknown id, so timing does not tell which ids exist.
        matches = hmac.compare_digest(hash_key_secret(secret), stored or "0" * 64)
        if principal is None or stored is None or not matches:
            raise AuthenticationError("unknown API key")
        if not principal.active:
            raise AuthenticationError("this API key was revoked")
        return principal

    def authenticate_certificate(self, certificate: x509.Certificate) -> Principal:
        now = self._clock.now()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise AuthenticationError("the client certificate is not valid now")
        fingerprint = _fingerprint(certificate)
        subject = certificate.subject.rfc4514_string()
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(fingerprint)
            if record is not None and record.status is not CertificateStatus.GOOD:
                raise AuthenticationError(f"the client certificate is {record.status.value}")
            for principal in uow.principals.for_certificate(fingerprint, subject):
                if principal.active and self._binds(uow, principal, certificate, fingerprint, record):
                    return principal
        raise AuthenticationError("no principal is bound to this client certificate")

    def _binds(self, uow: UnitOfWork, principal: Principal, certificate: x509.Certificate,
               fingerprint: str, record: CertificateRecord | None) -> bool:
        if principal.certificate_fingerprint is not None:
            return principal.certificate_fingerprint == fingerprint
        # A subject binding accepts only an api-client certificate issued here: a device's
        # or a service's certificate with the same subject is not the principal.
        if record is None or record.profile not in self._api_profiles \
                or record.authority != principal.certificate_authority:
            return False
        authority = uow.authorities.get(principal.certificate_authority or "")
        if authority is None:
            return False
        try:
            certificate.verify_directly_issued_by(authority.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True
