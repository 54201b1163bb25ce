"""Manifests between supply-chain stages: export (sign, optionally encrypt) and import
(verify, then every entry becomes a previous-stage registration), DESIGN.md §1 step 2.

An import is refused, audited, and changes nothing unless: the CMS signature verifies,
the signer chains to an anchor through which the recipient trusts the sending supplier,
the signer is not revoked, the manifest names this recipient and has not expired, and
its delivery id was never imported before (replay).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from iotpki.core.allocation import cyclic_collector_paused
from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.authority import Authority, AuthorityKind
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError, PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.events import Event
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationService, RegistrationSpec
from iotpki.core.supply_chain.ports import ImportedDelivery
from iotpki.wire.errors import DecodeError
from iotpki.wire.manifest import (
    Manifest,
    ManifestEntry,
    ManifestSignatureError,
    decode_manifest,
    encode_manifest,
    open_signed_manifest,
    sign_manifest,
)
from iotpki.wire.path import ChainError, validate_chain

SIGNER = Purpose.MANIFEST_SIGNING.value  # the profile of manifest signers
Progress = Callable[[int, int], None]


class ManifestRefused(PolicyError):
    """A manifest that is not imported; its reason is one of the manifest `RefusalReason`s
    (or `bad-signature`)."""

    def __init__(self, reason: R, detail: str) -> None:
        super().__init__(reason, detail)
        self.args = (f"{reason.value}: {detail}",)


@dataclass(frozen=True)
class ImportTarget:
    """What the imported identities may enroll for at the recipient."""

    authority: str
    profile: str
    lifetime: timedelta = timedelta(days=365)
    domain: str | None = None


@dataclass(frozen=True)
class ImportResult:
    delivery_id: str
    sender: str
    entries: int


def component_id_of(record: CertificateRecord) -> str:
    certificate = record.certificate
    for oid in (x509.NameOID.SERIAL_NUMBER, x509.NameOID.COMMON_NAME):
        values = certificate.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return record.fingerprint


class ManifestService:
    def __init__(self, uow: UnitOfWorkFactory, certificates: ServiceCertificates,
                 registrations: RegistrationService, clock: Clock) -> None:
        self._uow = uow
        self._certificates = certificates
        self._registrations = registrations
        self._clock = clock

    # -- export --------------------------------------------------------------------------------

    def export(self, sender: str, recipient: str, identities: Sequence[CertificateRecord],
               actor: str, lifetime: timedelta = timedelta(days=30),
               delivery_id: str | None = None) -> bytes:
        """A signed manifest (CMS SignedData, DER) listing `identities` for `recipient`."""
        if not identities:
            raise ConfigurationError("a manifest lists at least one identity")
        now = self._clock.now()
        manifest = Manifest(
            delivery_id=delivery_id or str(uuid.uuid4()), sender=sender, recipient=recipient,
            issued_at=now, expires_at=now + lifetime,
            entries=tuple(ManifestEntry(r.fingerprint, r.certificate.issuer.rfc4514_string(),
                                        r.serial_hex, component_id_of(r), {"profile": r.profile})
                          for r in identities))
        key, certificate, chain = self.signer(sender, actor)
        signed = sign_manifest(encode_manifest(manifest), certificate, key, chain)
        with self._uow() as uow:
            uow.deliveries.add(sender, recipient, manifest.delivery_id, "exported",
                               len(manifest.entries), now)
            append_audit(uow.audit, now, AuditRecord(
                "manifest.export", "success", actor, manifest.delivery_id,
                {"sender": sender, "recipient": recipient, "entries": len(manifest.entries)}))
            uow.commit()
        return signed

    def signer(self, organization: str, actor: str) -> tuple[Any, x509.Certificate,
                                                              list[x509.Certificate]]:
        """The organization's manifest-signer key, certificate and chain (without the root);
        made on first use by the organization's issuing CA, renewed like every service
        certificate (`core.ca.service_certificates`)."""
        with self._uow() as uow:
            issuing = _issuing_authority(uow, organization)
        signer = self._certificates.current(organization, Purpose.MANIFEST_SIGNING,
                                            issuer=issuing.label, actor=actor)
        return signer.key, signer.certificate, list(signer.chain[:-1])

    # -- import --------------------------------------------------------------------------------

    def imported(self, recipient: str, limit: int = 50,
                 before: int | None = None) -> list[ImportedDelivery]:
        """The manifests the recipient imported, newest first, with their entry counts."""
        with self._uow() as uow:
            return uow.deliveries.imported(recipient, limit, before)

    def import_manifest(self, recipient: str, data: bytes, target: ImportTarget, actor: str,
                        progress: Progress | None = None) -> ImportResult:
        now = self._clock.now()
        try:
            with cyclic_collector_paused():  # a million entries: core.allocation
                manifest = self._verified(recipient, data, now)
                return self._register(recipient, manifest, target, actor, now, progress)
        except ManifestRefused as refusal:
            with self._uow() as uow:
                append_audit(uow.audit, now, AuditRecord(
                    "manifest.import", "refused", actor, recipient,
                    {"reason": refusal.reason, "detail": refusal.detail}))
                uow.events.add(Event("manifest.refused", now, {"recipient": recipient,
                                                               "reason": refusal.reason}))
                uow.commit()
            raise

    def _verified(self, recipient: str, data: bytes, now: datetime) -> Manifest:
        try:
            signed = open_signed_manifest(data)
            manifest = decode_manifest(signed.document)
        except DecodeError as exc:
            raise ManifestRefused(R.MANIFEST_MALFORMED, str(exc)) from exc
        except ManifestSignatureError as exc:
            raise ManifestRefused(R.BAD_SIGNATURE, str(exc)) from exc
        if manifest.recipient != recipient:
            raise ManifestRefused(R.WRONG_RECIPIENT, f"manifest is for {manifest.recipient}, "
                                                     f"not {recipient}")
        if now >= manifest.expires_at:
            raise ManifestRefused(R.MANIFEST_EXPIRED, f"manifest expired {manifest.expires_at.isoformat()}")
        with self._uow() as uow:
            anchors = [a.certificate for a in uow.trust.anchors(recipient, manifest.sender)]
            intermediates = [c for c in signed.certificates if c != signed.signer]
            try:
                validate_chain(signed.signer, intermediates, anchors, now)
            except ChainError as exc:
                raise ManifestRefused(R.UNTRUSTED_SUPPLIER, f"{recipient} does not trust "
                                      f"{manifest.sender} for this signer: {exc}") from exc
            record = uow.certificates.get_by_fingerprint(fingerprint(signed.signer))
            if record is not None and record.status is not CertificateStatus.GOOD:
                raise ManifestRefused(R.SIGNER_REVOKED, f"manifest signer is {record.status.value}")
        _check_signer_role(signed.signer, record)
        return manifest

    def _register(self, recipient: str, manifest: Manifest, target: ImportTarget, actor: str,
                  now: datetime, progress: Progress | None) -> ImportResult:
        template = RegistrationSpec(
            organization=recipient, authority=target.authority, profile=target.profile,
            method=RegistrationMethod.PREVIOUS_STAGE, domain=target.domain,
            lifetime=target.lifetime, manifest=manifest.delivery_id)
        with self._uow() as uow:
            if not uow.deliveries.add(manifest.sender, recipient, manifest.delivery_id, "imported",
                                      len(manifest.entries), now):
                raise ManifestRefused(R.REPLAYED, f"delivery {manifest.delivery_id} from "
                                      f"{manifest.sender} was imported before")
            try:
                count = self._registrations.create_from_manifest(
                    uow, template, manifest.entries, actor, progress)
            except (ConfigurationError, NotFoundError) as exc:
                raise ManifestRefused(R.BAD_TARGET, str(exc)) from exc
            # One audit entry for the import as a whole: it is one decision.
            append_audit(uow.audit, now, AuditRecord(
                "manifest.import", "success", actor, manifest.delivery_id,
                {"sender": manifest.sender, "recipient": recipient, "entries": count,
                 "authority": target.authority, "profile": target.profile}))
            uow.events.add(Event("manifest.imported", now, {
                "delivery_id": manifest.delivery_id, "sender": manifest.sender, "entries": count}))
            uow.commit()  # one transaction: all entries or none
        return ImportResult(manifest.delivery_id, manifest.sender, count)


def _check_signer_role(signer: x509.Certificate, record: CertificateRecord | None) -> None:
    """Only a manifest signer may sign manifests: a chip's or device's own key, chaining to
    the same supplier anchor, must not be able to forge one. Ours are issued from the
    manifest-signer profile; an external supplier's must at least assert contentCommitment
    (RFC 5280 §4.2.1.3: the signer commits to the content)."""
    if record is not None:
        if record.profile != SIGNER:
            raise ManifestRefused(R.NOT_A_SIGNER, f"the signer certificate was issued for "
                                                  f"{record.profile}, not {SIGNER}")
        return
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.content_commitment:
        raise ManifestRefused(R.NOT_A_SIGNER, "the signer certificate does not assert "
                                              "contentCommitment")


def _issuing_authority(uow: UnitOfWork, organization: str) -> Authority:
    """The organization's CA that signs its own service certificates: an intermediate."""
    candidates = [a for a in uow.authorities.list()
                  if a.organization == organization and a.can_issue]
    if not candidates:
        raise NotFoundError(f"organization {organization!r} has no issuing authority")
    intermediates = [a for a in candidates if a.kind is AuthorityKind.INTERMEDIATE]
    return (intermediates or candidates)[0]
