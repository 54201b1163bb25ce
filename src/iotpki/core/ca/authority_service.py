"""Creating, importing and reading authorities. Every change is audited in its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.authority import Authority, AuthorityKind
from iotpki.core.ca.ca_certificate import CAIssuer, CASpec, build_ca_certificate, check_ca_certificate
from iotpki.core.ca.crl_shard import check_window
from iotpki.core.ca.urls import PublicURLs
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError
from iotpki.core.events import Event
from iotpki.core.keyring import KeyRing
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.supply_chain.organization import Organization, check_label
from iotpki.wire.keys import key_type_of


def _public_der(key: Any) -> bytes:
    return bytes(key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


class AuthorityService:
    def __init__(
        self, uow: UnitOfWorkFactory, keys: KeyRing, urls: PublicURLs, clock: Clock
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._urls = urls
        self._clock = clock

    # -- organizations -------------------------------------------------------------------------

    def ensure_organization(self, label: str, name: str, actor: str) -> Organization:
        with self._uow() as uow:
            existing = uow.organizations.get(label)
            if existing is not None:
                return existing
            organization = Organization(label, name, self._clock.now())
            uow.organizations.add(organization)
            self._audit(uow, actor, "organization.create", label, {"name": name})
            uow.commit()
            return organization

    def organizations(self) -> list[Organization]:
        with self._uow() as uow:
            return uow.organizations.list()

    # -- reading -------------------------------------------------------------------------------

    def get(self, label: str) -> Authority:
        with self._uow() as uow:
            authority = uow.authorities.get(label)
        if authority is None:
            raise NotFoundError(f"unknown authority {label!r}")
        return authority

    def list(self) -> list[Authority]:
        with self._uow() as uow:
            return uow.authorities.list()

    # -- creating ------------------------------------------------------------------------------

    def create(
        self, label: str, organization: str, key_type: str, spec: CASpec, actor: str,
        parent: str | None = None, key_location: str | None = None,
    ) -> Authority:
        """A root (parent None) or an intermediate; the key is made in the key backend
        (`key_location`: a backend name or a token URI; None: the default backend)."""
        check_label(label, "authority")
        self._check_new(label, organization)
        self._keys.check(key_type, key_location)
        issuer = self._issuer(parent) if parent is not None else None
        key_ref = self._keys.generate(key_type, label, key_location)
        try:
            key = self._keys.load(key_ref)
            now = self._clock.now()
            signing_key = key if issuer is None else issuer.key
            cert = build_ca_certificate(spec, key.public_key(), signing_key, now, issuer, self._urls)
            chain = () if parent is None else self.get(parent).full_chain
            kind = AuthorityKind.ROOT if parent is None else AuthorityKind.INTERMEDIATE
            authority = Authority(label, organization, kind, cert, key_ref, chain, now, parent)
            self._add(authority, actor, {"key_type": key_type, "parent": parent,
                                         "key_location": self._keys.location_of(key_ref)})
        except BaseException:
            self._keys.discard(key_ref)  # never leave a key for an authority that does not exist
            raise
        return authority

    def _issuer(self, parent: str) -> CAIssuer:
        authority = self.get(parent)
        if not authority.can_issue or authority.key_ref is None:
            raise ConfigurationError(f"authority {parent} holds no key and cannot sign a CA")
        return CAIssuer(parent, authority.certificate, self._keys.load(authority.key_ref))

    def _check_new(self, label: str, organization: str) -> None:
        with self._uow() as uow:
            if uow.authorities.get(label) is not None:
                raise ConflictError(f"authority {label!r} already exists")
            if uow.organizations.get(organization) is None:
                raise NotFoundError(f"unknown organization {organization!r}")

    def _add(self, authority: Authority, actor: str, details: dict[str, Any]) -> None:
        with self._uow() as uow:
            uow.authorities.add(authority)
            cert = authority.certificate
            self._audit(uow, actor, "authority.create", authority.label, {
                **details, "kind": authority.kind.value, "organization": authority.organization,
                "subject": cert.subject.rfc4514_string(), "serial": format(cert.serial_number, "x"),
            })
            uow.events.add(Event("authority.created", self._clock.now(),
                                 {"authority": authority.label, "kind": authority.kind.value}))
            uow.commit()

    # -- CRL sharding --------------------------------------------------------------------------

    def set_crl_sharding(self, label: str, window: timedelta | None, actor: str) -> Authority:
        """Shard the authority's CRL by expiry window (`core.ca.crl_shard`), or (None) go back
        to one CRL. It applies to certificates issued from then on: each keeps the scope its
        CDP names, so the CRLs already relied upon stay complete. Nodes read the setting when
        they first sign with the authority (a restart applies it everywhere)."""
        if window is not None:
            check_window(window)
        with self._uow() as uow:
            authority = uow.authorities.get(label)
            if authority is None:
                raise NotFoundError(f"unknown authority {label!r}")
            if not authority.can_issue:
                raise ConfigurationError(f"authority {label} issues no certificates")
            uow.authorities.set_crl_shard_window(label, window)
            self._audit(uow, actor, "authority.crl_sharding", label, {
                "window_seconds": int(window.total_seconds()) if window is not None else None})
            uow.commit()
        return self.get(label)

    # -- importing -----------------------------------------------------------------------------

    def import_authority(
        self, label: str, organization: str, certificate: x509.Certificate,
        chain: Sequence[x509.Certificate], private_key: Any, actor: str,
        key_location: str | None = None,
    ) -> Authority:
        """An existing CA (its certificate, the chain above it, and its key) becomes issuing here.
        A key already held by a backend (a token key loaded from its URI) stays where it is."""
        check_label(label, "authority")
        self._check_new(label, organization)
        _check_importable(certificate, chain)
        if _public_der(private_key.public_key()) != _public_der(certificate.public_key()):
            raise ConfigurationError("the private key does not match the CA certificate")
        key_type_of(certificate.public_key())
        kind = AuthorityKind.ROOT if not chain else AuthorityKind.INTERMEDIATE
        key_ref = self._keys.import_private_key(private_key, label, key_location)
        try:
            authority = Authority(label, organization, kind, certificate, key_ref, tuple(chain),
                                  self._clock.now())
            self._add(authority, actor, {"imported": True})
        except BaseException:
            self._keys.discard(key_ref)
            raise
        return authority

    def import_trust_anchor(
        self, label: str, organization: str, certificate: x509.Certificate, actor: str
    ) -> Authority:
        """An external CA certificate (no key) that an organization trusts for incoming identities."""
        check_label(label, "authority")
        self._check_new(label, organization)
        _check_importable(certificate, ())
        authority = Authority(label, organization, AuthorityKind.TRUST_ANCHOR, certificate, None,
                              (), self._clock.now())
        self._add(authority, actor, {"imported": True})
        return authority

    def _audit(self, uow: UnitOfWork, actor: str, action: str, target: str,
               details: dict[str, Any]) -> None:
        append_audit(uow.audit, self._clock.now(), AuditRecord(action, "success", actor, target,
                                                               details))


def _check_importable(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> None:
    try:
        check_ca_certificate(certificate)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    below = certificate
    for above in chain:
        try:
            below.verify_directly_issued_by(above)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise ConfigurationError(
                f"chain is broken: {below.subject.rfc4514_string()} is not issued by "
                f"{above.subject.rfc4514_string()}"
            ) from exc
        below = above

