"""Revocation requests (RFC 9483 §4.2, §5.3.2): who may revoke which certificate, and what
the rr must hold.

- The template names the certificate by issuer and serialNumber (both REQUIRED:
  badDataFormat without); crlEntryDetails hold exactly one reasonCode (badDataFormat
  otherwise); removeFromCRL (8) asks to release a certificate on hold (RFC 5280 §5.3.1),
  any other code revokes. A subject or publicKey in the template must be the named
  certificate's (badCertId).
- Who asks, by the rr's protection:
  - signed with the certificate it names: its holder (§4.2). A hold is then the operator's
    to end unless the profile says `holder_revokes_hold`.
  - signed with another certificate: an RA (§5.3.2, revoking on behalf of an end entity),
    allowed only if that certificate is bound to an API principal (`core.integration`)
    whose role may revoke; the certificate must be of the principal's organization (a
    certificate of another organization is badCertId, as the REST API reports it "not
    found"). An RA releases holds too (it is the operator of its organization).
    Any other signer naming another certificate is notAuthorized.
  - MAC-protected: a secret registration that may revoke (`Registration.may_revoke`, set by
    the RA that made it: `iotpki registration create --may-revoke`, REST `may_revoke`),
    for a certificate it could have issued: the registration's authority and profile, and
    its subject if it names one (notAuthorized otherwise). Revoking uses none of its uses.
    Holds are ended as by a holder.
- While a key update of the certificate awaits its certConf, the certificate is neither
  revoked nor released: rp rejection badRequest ("try again after the confirmation"; the
  update is confirmed, rejected or expires within the confirmation timeout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.profile import Profile
from iotpki.core.errors import AccessDeniedError, AuthenticationError, ConflictError, NotFoundError
from iotpki.core.integration.access import Action, may
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import Registration
from iotpki.protocols.cmp.ports import CMPCore
from iotpki.protocols.cmp.refusals import CMPFailure, RequestRefusal, revocation_reason
from iotpki.wire.cmp.messages import RevocationRequest

REMOVE_FROM_CRL = 8


@dataclass(frozen=True)
class Revoker:
    """Who protected the rr: a signer (holder or RA) or a MAC registration."""

    requester: str
    signer: x509.Certificate | None = None
    registration: Registration | None = None


class Revocations:
    def __init__(self, core: CMPCore, profiles: Mapping[str, Profile]) -> None:
        self._core = core
        self._profiles = profiles

    def serve(self, body: RevocationRequest, revoker: Revoker) -> None:
        """Revoke or release; raise `CMPFailure` (an error message) or `RequestRefusal`
        (an rp with status rejection)."""
        check_form(body)
        record, holder = self._target(body, revoker)
        check_template(body, record.certificate)
        if self._core.transactions.unconfirmed_update_of(record.certificate) is not None:
            raise RequestRefusal("badRequest", "RFC 9483 §4.1.3: a key update of this "
                                               "certificate awaits its certConf; try again "
                                               "after it is confirmed")
        if body.reasons == (REMOVE_FROM_CRL,):
            self._release(record, revoker.requester, holder)
            return
        try:
            self._core.revocation.revoke(record.authority, record.serial,
                                         revocation_reason(body.reasons[0]), revoker.requester,
                                         holder=holder)
        except ConflictError as exc:
            raise RequestRefusal("certRevoked", str(exc)) from exc
        except AccessDeniedError as exc:  # a hold is the operator's to end (issue 15 item 12)
            raise RequestRefusal("notAuthorized", str(exc)) from exc

    def _target(self, body: RevocationRequest, revoker: Revoker) -> tuple[CertificateRecord, bool]:
        """The named certificate, and whether it is revoked as by its holder."""
        signer = revoker.signer
        if signer is not None and names(body, signer):
            return self._issued_here(signer), True
        if signer is not None:
            return self._for_ra(body, signer), False
        assert revoker.registration is not None
        return self._for_registration(body, revoker.registration), True

    def _issued_here(self, certificate: x509.Certificate) -> CertificateRecord:
        try:
            return self._core.certificates.get_by_fingerprint(fingerprint(certificate))
        except NotFoundError as exc:
            raise CMPFailure("badCertId", "RFC 9483 §4.2: the certificate was not issued "
                                          "here") from exc

    def _for_ra(self, body: RevocationRequest, signer: x509.Certificate) -> CertificateRecord:
        try:
            principal = self._core.principals.authenticate_certificate(signer)
        except AuthenticationError as exc:
            raise CMPFailure("notAuthorized", "an rr may name only the certificate that signs "
                                              "it, unless an RA principal signs it") from exc
        if not may(principal, Action.REVOKE):
            raise CMPFailure("notAuthorized", f"RA principal {principal.id} (role "
                                              f"{principal.role.value}) may not revoke")
        record, organization = self._named(body)
        if organization != principal.organization:
            raise CMPFailure("badCertId", "RFC 9483 §4.2: no such certificate")
        return record

    def _for_registration(self, body: RevocationRequest,
                          registration: Registration) -> CertificateRecord:
        if not registration.may_revoke:
            raise CMPFailure("notAuthorized", f"registration {registration.id} does not allow "
                                              f"revocation")
        record, _ = self._named(body)
        subject = registration.subject
        if (record.authority != registration.authority or record.profile != registration.profile
                or (subject is not None and record.subject != subject.rfc4514_string())):
            raise CMPFailure("notAuthorized", f"registration {registration.id} may revoke only "
                                              f"certificates it could have issued")
        return record

    def _named(self, body: RevocationRequest) -> tuple[CertificateRecord, str]:
        """The certificate the template names, with its authority's organization."""
        assert body.issuer_der is not None and body.serial is not None  # check_form
        for authority in self._core.authorities.list():
            if authority.certificate.subject.public_bytes() != body.issuer_der:
                continue
            try:
                return (self._core.certificates.get(authority.label, body.serial),
                        authority.organization)
            except NotFoundError:
                continue
        raise CMPFailure("badCertId", "RFC 9483 §4.2: no such certificate")

    def _release(self, record: CertificateRecord, requester: str, holder: bool) -> None:
        """removeFromCRL (RFC 5280 §5.3.1): a hold is the operator's to end unless the
        profile lets the holder (`holder_revokes_hold`)."""
        if record.status is not CertificateStatus.HELD:
            if record.status is CertificateStatus.REVOKED:
                raise CMPFailure("certRevoked", "removeFromCRL: the certificate is revoked")
            raise RequestRefusal("badRequest", "removeFromCRL: the certificate is not on hold")
        profile = self._profiles.get(record.profile)
        if holder and (profile is None or not profile.holder_revokes_hold):
            raise RequestRefusal("notAuthorized", "the certificate is on hold; only an "
                                                  "operator releases it")
        self._core.revocation.release(record.authority, record.serial, requester)


def check_form(body: RevocationRequest) -> None:
    if body.issuer_der is None or body.serial is None:
        raise CMPFailure("badDataFormat", "RFC 9483 §4.2: the template names issuer and "
                                          "serialNumber")
    if len(body.reasons) != 1:
        raise CMPFailure("badDataFormat", "RFC 9483 §4.2: crlEntryDetails hold exactly one "
                                          "reasonCode")
    if body.reasons[0] != REMOVE_FROM_CRL:
        revocation_reason(body.reasons[0])  # badRequest for a code no rr may ask for


def names(body: RevocationRequest, certificate: x509.Certificate) -> bool:
    return (body.serial == certificate.serial_number
            and body.issuer_der == certificate.issuer.public_bytes())


def check_template(body: RevocationRequest, certificate: x509.Certificate) -> None:
    if body.subject_der is not None and body.subject_der != certificate.subject.public_bytes():
        raise CMPFailure("badCertId", "RFC 9483 §4.2: the template's subject is not the "
                                      "certificate's")
    key = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    if body.public_key_der is not None and body.public_key_der != key:
        raise CMPFailure("badCertId", "RFC 9483 §4.2: the template's publicKey is not the "
                                      "certificate's")
