"""The revocation request control (RFC 5272 §6.11) on the lifecycle model, authorized as a
CMP rr signed with a certificate is (RFC 9483 §4.2, §5.3.2):

- signed with the certificate it names (issuerName and serialNumber): its holder; a
  certificate not issued here is badCertId;
- signed with another certificate: an RA, allowed only if that certificate is bound to an
  API principal (`core.integration`) whose role may revoke, for a certificate of the
  principal's organization (another organization's is badCertId, "no such certificate",
  as the REST API reports it); any other signer naming another certificate is badIdentity.
- The passphrase of §6.11 authenticates nothing here (it would travel in clear over RFC
  5273's plain HTTP): a request signed with no certificate is badIdentity.
- reason is a CRLReason (RFC 5280 §5.3.1); certificateHold puts the certificate on hold,
  removeFromCRL (8) asks to release a hold, which the holder may do only where the profile
  lets it (`holder_revokes_hold`) and an RA (its organization's operator) may always;
  otherwise an operator decides (badIdentity).
- invalidityDate goes into the CRL entry (RFC 5280 §5.3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from cryptography import x509

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.profile import Profile
from iotpki.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
)
from iotpki.core.integration.access import Action, may
from iotpki.core.integration.principal import Principal
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.enrollment import fingerprint
from iotpki.protocols.cmc.identity import Signer
from iotpki.protocols.cmc.refusals import CMCFailure
from iotpki.wire.cmc.pki_data import RevokeRequest
from iotpki.wire.cmc.response import CMCStatus, StatusInfo

REMOVE_FROM_CRL = 8
_REASONS = {0: x509.ReasonFlags.unspecified, 1: x509.ReasonFlags.key_compromise,
            2: x509.ReasonFlags.ca_compromise, 3: x509.ReasonFlags.affiliation_changed,
            4: x509.ReasonFlags.superseded, 5: x509.ReasonFlags.cessation_of_operation,
            6: x509.ReasonFlags.certificate_hold, 9: x509.ReasonFlags.privilege_withdrawn,
            10: x509.ReasonFlags.aa_compromise}


class Revocations(Protocol):
    """What CMC needs from `core.revocation.service.RevocationService`."""

    def revoke(self, authority: str, serial: int, reason: x509.ReasonFlags, actor: str,
               invalidity_date: datetime | None = None, operator: bool = False,
               holder: bool = False) -> CertificateRecord: ...

    def release(self, authority: str, serial: int, actor: str) -> CertificateRecord: ...


class Principals(Protocol):
    """What CMC needs from `core.integration.principal_service.PrincipalService`."""

    def authenticate_certificate(self, certificate: x509.Certificate) -> Principal: ...


class CMCRevocation:
    def __init__(self, uow: UnitOfWorkFactory, revocations: Revocations,
                 profiles: Mapping[str, Profile], principals: Principals | None = None) -> None:
        self._uow = uow
        self._revocations = revocations
        self._profiles = profiles
        self._principals = principals

    def revoke(self, body_part: int, request: RevokeRequest, signer: Signer,
               requester: str) -> StatusInfo:
        """The status of one revokeRequest control; `CMCFailure` when refused."""
        record, holder = self._named(body_part, request, signer)
        if request.reason == REMOVE_FROM_CRL:
            return self._release(body_part, record, requester, holder)
        reason = _REASONS.get(request.reason)
        if reason is None:
            raise CMCFailure("badRequest", f"CRLReason {request.reason} cannot be asked for",
                             (body_part,))
        try:
            self._revocations.revoke(record.authority, record.serial, reason, requester,
                                     request.invalidity_date, holder=holder)
        except ConflictError as exc:
            raise CMCFailure("badRequest", str(exc), (body_part,)) from exc
        except AccessDeniedError as exc:
            raise CMCFailure("badIdentity", str(exc), (body_part,)) from exc
        return StatusInfo(CMCStatus.SUCCESS, (body_part,))

    def _named(self, body_part: int, request: RevokeRequest,
               signer: Signer) -> tuple[CertificateRecord, bool]:
        """The certificate named, and whether its holder asks (else an RA)."""
        certificate = signer.certificate
        if certificate is None:
            detail = ("a revokeRequest is signed with the certificate it names"
                      + ("; a passphrase authenticates nothing here"
                         if request.has_passphrase else ""))
            raise CMCFailure("badIdentity", detail, (body_part,))
        if (request.serial != certificate.serial_number
                or request.issuer != certificate.issuer.public_bytes()):
            return self._for_ra(body_part, request, certificate), False
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(fingerprint(certificate))
        if record is None:
            raise CMCFailure("badCertId", "the certificate was not issued here", (body_part,))
        return record, True

    def _for_ra(self, body_part: int, request: RevokeRequest,
                signer: x509.Certificate) -> CertificateRecord:
        """RFC 9483 §5.3.2 as CMP does: an RA principal of the certificate's organization."""
        try:
            if self._principals is None:
                raise AuthenticationError("no principals")
            principal = self._principals.authenticate_certificate(signer)
        except AuthenticationError as exc:
            raise CMCFailure("badIdentity", "a revokeRequest may name only the certificate "
                                            "that signs it, unless an RA principal signs it",
                             (body_part,)) from exc
        if not may(principal, Action.REVOKE):
            raise CMCFailure("badIdentity", f"RA principal {principal.id} (role "
                                            f"{principal.role.value}) may not revoke",
                             (body_part,))
        with self._uow() as uow:
            for authority in uow.authorities.list():
                if (authority.certificate.subject.public_bytes() == request.issuer
                        and authority.organization == principal.organization):
                    record = uow.certificates.get(authority.label, request.serial)
                    if record is not None:
                        return record
        raise CMCFailure("badCertId", "no such certificate", (body_part,))

    def _release(self, body_part: int, record: CertificateRecord, requester: str,
                 holder: bool) -> StatusInfo:
        if record.status is not CertificateStatus.HELD:
            raise CMCFailure("badRequest", "removeFromCRL: the certificate is not on hold",
                             (body_part,))
        profile = self._profiles.get(record.profile)
        if holder and (profile is None or not profile.holder_revokes_hold):
            raise CMCFailure("badIdentity", "the certificate is on hold; only an operator "
                                            "releases it", (body_part,))
        try:
            self._revocations.release(record.authority, record.serial, requester)
        except (ConflictError, NotFoundError) as exc:
            raise CMCFailure("badRequest", str(exc), (body_part,)) from exc
        return StatusInfo(CMCStatus.SUCCESS, (body_part,))
