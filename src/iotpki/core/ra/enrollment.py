"""Enrollment methods: the pluggable answer to "may this request be served?".

Protocol adapters (EST, CMP, REST, CLI) build an `EnrollmentRequest`; `select` picks the
first of the endpoint's methods that applies to it (`core.methods`), the same rule for
every protocol; none re-implements the checks. A method either returns an `Authorization`
(what may be issued: authority, profile, approved subject and SANs, the registration to
consume; or, for manual approval, that an operator decides) or raises `PolicyError` with a
specific reason. The
authorized request then takes the single issuance path, where the new key's CSR proves
possession and the registration is consumed in the issuing transaction.

Counterfeit filtering (DESIGN.md §1 step 2) is the previous-stage method refusing an
identity that is on no registration (hence no manifest), chains to no trusted anchor,
is revoked, or was already consumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.issuance import AttachedWrites, IssuanceRequest, IssuanceService
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ca.serial import serial_hex
from iotpki.core.clock import Clock
from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.events import Event
from iotpki.core.lifecycle.device import Device, DeviceState
from iotpki.core.methods import MethodName, select_method
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.approval import ApprovalLimits, ManualApproval
from iotpki.core.ra.guessing import ClientRate, GuessLimits, SecretRefusedError
from iotpki.core.ra.ports import IdentityKey
from iotpki.core.ra.registration import (
    Registration,
    RegistrationMethod,
    RegistrationStatus,
    issuer_serial_key,
    secret_matches,
)
from iotpki.wire.csr import decode_certification_request, requested_sans
from iotpki.wire.decoding import MALFORMED
from iotpki.wire.errors import DecodeError
from iotpki.wire.path import ChainError, validate_chain
from iotpki.wire.possession import PossessionError, verify_possession


@dataclass(frozen=True)
class EnrollmentRequest:
    csr: bytes
    requester: str
    # The identity the client presents (TLS client certificate, CMP signer), leaf first.
    client_chain: tuple[x509.Certificate, ...] = ()
    # How the adapter proved the client holds client_chain[0]'s key ("tls", "cmp-signature")...
    possession: str | None = None
    # ... or a detached signature of the CSR's DER by that key, checked here.
    possession_signature: bytes | None = None
    registration_id: str | None = None
    secret: str | None = None
    authority: str | None = None  # when the endpoint (e.g. an EST label) names the CA
    profile: str | None = None
    client: str | None = None  # the client's address, for per-client guess throttling


@dataclass(frozen=True)
class Authorization:
    authority: str
    profile: str
    subject: x509.Name | None
    sans: tuple[x509.GeneralName, ...] | None
    registration: str | None
    component_digest: bytes | None = None
    device: str | None = None  # the device the new identity is for (`core.lifecycle.device_service`)
    presented: str | None = None  # fingerprint of the identity presented
    deferred: bool = False  # an operator decides (manual approval): queued, not issued now


class EnrollmentMethod(Protocol):
    name: MethodName

    def applies(self, request: EnrollmentRequest) -> bool:
        """Whether the request carries this method's credentials (selection, not a check)."""
        ...

    def authorize(self, request: EnrollmentRequest, uow: UnitOfWork, now: datetime) -> Authorization:
        """Raise `PolicyError` with the specific reason when the request may not be served."""
        ...


def fingerprint(certificate: x509.Certificate) -> str:
    from hashlib import sha256
    return sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def identity_keys(certificate: x509.Certificate) -> IdentityKey:
    return IdentityKey(fingerprint(certificate), issuer_serial_key(
        certificate.issuer.rfc4514_string(), serial_hex(certificate.serial_number)))


def check_possession(request: EnrollmentRequest) -> None:
    if request.possession is not None:
        return  # proven by the protocol (TLS handshake, CMP signature)
    if request.possession_signature is None:
        raise PolicyError(R.POSSESSION_NOT_PROVEN,
                          "the request is not signed with the presented certificate's key")
    try:
        verify_possession(request.client_chain[0], request.csr, request.possession_signature)
    except PossessionError as exc:
        raise PolicyError(R.POSSESSION_NOT_PROVEN, str(exc)) from exc


def _presented(request: EnrollmentRequest) -> x509.Certificate:
    if not request.client_chain:
        raise PolicyError(R.NO_CLIENT_IDENTITY, "no client certificate was presented")
    check_possession(request)
    return request.client_chain[0]


# (certificate, issuer) → "good" | "revoked" | "unknown": a supplier's CRL or OCSP, cached.
ExternalRevocation = Callable[[x509.Certificate, x509.Certificate], str]


def _check_not_revoked(uow: UnitOfWork, path: list[x509.Certificate],
                       external: ExternalRevocation | None) -> None:
    """Identities we issued are checked in our store; those of a supplier that runs its own
    PKI through its CRL (fail closed: an unknown status is refused)."""
    certificate = path[0]
    record = uow.certificates.get_by_fingerprint(fingerprint(certificate))
    if record is not None:
        if record.status is not CertificateStatus.GOOD:
            raise PolicyError(R.REVOKED, f"the presented certificate is {record.status.value} "
                                         f"({record.revocation_reason})")
        return
    status = external(certificate, path[1]) if external is not None else "unknown"
    if status == "revoked":
        raise PolicyError(R.REVOKED, "the supplier's CRL lists the presented certificate")
    if status != "good":
        raise PolicyError(R.REVOCATION_UNKNOWN, "the revocation status of the presented "
                                                "certificate cannot be established")


def _usable(registration: Registration, now: datetime) -> None:
    if registration.status is RegistrationStatus.CONSUMED:
        raise PolicyError(R.REGISTRATION_CONSUMED,
                          f"registration {registration.id} was already used")
    if registration.status is not RegistrationStatus.OPEN:
        raise PolicyError(R.NOT_REGISTERED, f"registration {registration.id} is "
                                            f"{registration.status.value}")
    if registration.is_expired(now):
        raise PolicyError(R.REGISTRATION_EXPIRED,
                          f"registration {registration.id} expired {registration.expires_at}")


def _matching(request: EnrollmentRequest, registration: Registration) -> bool:
    return (request.authority in (None, registration.authority)
            and request.profile in (None, registration.profile))


def _authorization(registration: Registration) -> Authorization:
    return Authorization(registration.authority, registration.profile, registration.subject,
                         registration.sans, registration.id)


class PreviousStageCertificate:
    """The device proves the identity of its previous stage (component or device certificate)."""

    name = MethodName.PREVIOUS_STAGE

    def __init__(self, external: ExternalRevocation | None = None,
                 needs_registration: Callable[[str], bool] | None = None) -> None:
        self._external = external
        # profile name → whether a registration must name the presented identity
        self._needs_registration = needs_registration or (lambda _profile: True)

    def applies(self, request: EnrollmentRequest) -> bool:
        return bool(request.client_chain)

    def authorize(self, request: EnrollmentRequest, uow: UnitOfWork, now: datetime) -> Authorization:
        presented = _presented(request)
        candidates = [r for r in uow.registrations.for_identity(identity_keys(presented))
                      if r.method is RegistrationMethod.PREVIOUS_STAGE and _matching(request, r)]
        if not candidates:
            if (request.authority is not None and request.profile is not None
                    and not self._needs_registration(request.profile)):
                return self._unregistered(request, presented, uow, now)
            raise PolicyError(R.NOT_REGISTERED, "the presented identity is on no manifest or "
                                                "registration for this enrollment")
        open_ones = [r for r in candidates if r.status is RegistrationStatus.OPEN]
        registration = (open_ones or candidates)[0]
        _usable(registration, now)
        anchors = [a.certificate for a in uow.trust.anchors(registration.organization)]
        try:
            path = validated_path(uow, presented, request.client_chain[1:], anchors, now)
        except ChainError as exc:
            raise PolicyError(R.UNTRUSTED_CHAIN, f"{registration.organization} trusts no supplier "
                                                 f"anchor for this identity: {exc}") from exc
        _check_not_revoked(uow, path, self._external)
        presented_fingerprint = fingerprint(presented)
        built = uow.devices.containing(registration.organization, presented_fingerprint)
        device = built or uow.devices.with_identity(presented_fingerprint)
        _check_device(device)
        return replace(_authorization(registration),
                       component_digest=built.component_digest if built is not None else None,
                       device=device.id if device is not None else None,
                       presented=presented_fingerprint)

    def _unregistered(self, request: EnrollmentRequest, presented: x509.Certificate,
                      uow: UnitOfWork, now: datetime) -> Authorization:
        """A profile with `previous_stage_needs_registration: false`: any certificate of a
        stage the endpoint CA's organization trusts enrolls, for the endpoint's authority
        and profile, with the subject and SANs of its request (checked by the profile)."""
        assert request.authority is not None and request.profile is not None
        authority = uow.authorities.get(request.authority)
        if authority is None:
            raise PolicyError(R.UNKNOWN_AUTHORITY, f"unknown authority {request.authority!r}")
        anchors = [a.certificate for a in uow.trust.anchors(authority.organization)]
        try:
            path = validated_path(uow, presented, request.client_chain[1:], anchors, now)
        except ChainError as exc:
            raise PolicyError(R.UNTRUSTED_CHAIN, f"{authority.organization} trusts no supplier "
                                                 f"anchor for this identity: {exc}") from exc
        _check_not_revoked(uow, path, self._external)
        presented_fingerprint = fingerprint(presented)
        device = (uow.devices.containing(authority.organization, presented_fingerprint)
                  or uow.devices.with_identity(presented_fingerprint))
        _check_device(device)
        return Authorization(request.authority, request.profile, None, None, None,
                             device=device.id if device is not None else None,
                             presented=presented_fingerprint)


def validated_path(uow: UnitOfWork, presented: x509.Certificate,
                    given: Sequence[x509.Certificate], anchors: list[x509.Certificate],
                    now: datetime) -> list[x509.Certificate]:
    """The path as the client sent it, else completed from what we know (issue 13: many
    clients send only their leaf, RFC 9483 §3.3 only recommends the chain)."""
    try:
        return validate_chain(presented, given, anchors, now)
    except ChainError as exc:
        known = _known_issuers(uow, presented)
        if not known and not any(c.subject == presented.issuer for c in given):
            raise ChainError(  # issue 22 item 4: say what is missing, not the library's words
                f"its issuer ({presented.issuer.rfc4514_string()}) was not sent with it and is "
                "no CA known here: send the chain (leaf first), or import the supplier's CA "
                "(iotpki authority import) and trust it (iotpki org trust)") from exc
        candidates = (*given, *known)
        try:
            return validate_chain(presented, candidates, anchors, now)
        except ChainError as second:
            top = _top_of(presented, candidates)
            if top is presented or any(top == a for a in anchors):
                raise  # the path reaches an anchor: another fault (validity, signature)
            raise ChainError(
                f"its chain ends at {top.subject.rfc4514_string()}, which is not an anchor of a "
                "trusted supplier (iotpki org trust ORG --supplier SUPPLIER --anchor "
                "LABEL)") from second


def _top_of(leaf: x509.Certificate,
            candidates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The last certificate reached from `leaf` by following issuer names in `candidates`."""
    current, seen = leaf, {leaf}
    while current.issuer != current.subject:
        parent = next((c for c in candidates if c.subject == current.issuer and c not in seen),
                      None)
        if parent is None:
            return current
        current = parent
        seen.add(current)
    return current


def _known_issuers(uow: UnitOfWork, presented: x509.Certificate) -> list[x509.Certificate]:
    """Chain completion: the CAs hosted here and the supplier CA certificates imported as
    trust anchors (both are authorities), whose subject is the leaf's issuer, with their
    chains. They are only candidates: the path still has to validate to an anchor of the
    organization."""
    return [c for authority in uow.authorities.list()
            if authority.certificate.subject == presented.issuer
            for c in authority.full_chain]


class CurrentCertificate:
    """Renewal (RFC 7030 §4.2.2, RFC 9483 §4.1.3): the holder of a good certificate we issued
    gets a new one with the same subject and SANs, from the same authority and profile.
    A certificate that expired is still accepted within its profile's `renewal_grace`."""

    name = MethodName.CURRENT_CERTIFICATE

    def __init__(self, grace: Callable[[str], timedelta] | None = None) -> None:
        self._grace = grace or (lambda _profile: timedelta(0))

    def applies(self, request: EnrollmentRequest) -> bool:
        return bool(request.client_chain)

    def authorize(self, request: EnrollmentRequest, uow: UnitOfWork, now: datetime) -> Authorization:
        presented = _presented(request)
        record = uow.certificates.get_by_fingerprint(fingerprint(presented))
        if record is None:
            raise PolicyError(R.NOT_REGISTERED, "the presented certificate was not issued here")
        if record.status is not CertificateStatus.GOOD:
            raise PolicyError(R.REVOKED, f"the presented certificate is {record.status.value}")
        grace = self._grace(record.profile)
        if now >= record.not_after + grace:
            raise PolicyError(R.CERTIFICATE_EXPIRED, f"the presented certificate expired "
                                                     f"{record.not_after.isoformat()}"
                                                     + (f" (grace {grace})" if grace else ""))
        if request.authority not in (None, record.authority):
            raise PolicyError(R.IDENTITY_MISMATCH, f"renewal goes to {record.authority}, "
                                                   f"the issuer of the current certificate")
        sans = _sans_of(presented)
        if request.csr:  # `check` without a CSR (ACME's challenge): finalize checks it
            _check_same_identity(request.csr, presented.subject, sans)
        _check_lineage(uow, record, presented, request.csr)
        device = uow.devices.with_identity(record.fingerprint)
        _check_device(device)
        return Authorization(record.authority, record.profile, presented.subject, sans, None,
                             device=device.id if device is not None else None,
                             presented=record.fingerprint)


def _check_lineage(uow: UnitOfWork, record: CertificateRecord, presented: x509.Certificate,
                   csr_bytes: bytes) -> None:
    """Renewal lineage: the certificates of one identity share authority, subject and SANs.
    Only the newest of its profile renews (an older one was replaced and must not fork the
    lineage), and once any certificate with the presented key was revoked for keyCompromise,
    no certificate with that key renews (RFC 5280 §5.3.1: the key is no longer trusted).
    A newer certificate for the very key now requested is the answer the client lost: its
    retry is served again."""
    key = _spki(presented)
    requested = _requested_spki(csr_bytes)
    for other in uow.certificates.find(CertificateQuery(
            authority=record.authority, subject=record.subject, limit=None)):
        if other.fingerprint == record.fingerprint or set(other.sans) != set(record.sans):
            continue
        other_key = _spki(other.certificate)
        if (other.revocation_reason == x509.ReasonFlags.key_compromise.value
                and other_key == key):
            raise PolicyError(R.REVOKED, f"certificate {other.serial_hex} with the same key was "
                                         f"revoked for keyCompromise")
        if (other.profile == record.profile and other.issued_at > record.issued_at
                and other_key != requested):
            raise PolicyError(R.IDENTITY_MISMATCH, f"certificate {other.serial_hex} replaced the "
                                                   f"presented one: only the newest renews")


def _requested_spki(csr_bytes: bytes) -> bytes | None:
    """The requested key, None if it cannot be read (a key on an unknown curve raises
    UnsupportedAlgorithm: the issuance policy refuses it, `unsupported-key`)."""
    try:
        return bytes(decode_certification_request(csr_bytes).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    except DecodeError:
        return None
    except MALFORMED:
        return None


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_device(device: Device | None) -> None:
    """Only an active device, one registered for its next identity, or one in maintenance
    (for a maintenance identity; with hold-mode maintenance its certificates are on hold
    anyway) enrolls: a lost, stolen or retired device gets none whatever it presents."""
    if device is not None and device.state not in (DeviceState.ACTIVE, DeviceState.REGISTERED,
                                                   DeviceState.MAINTENANCE):
        raise PolicyError(R.REVOKED, f"device {device.id} is {device.state.value}")


def _sans_of(certificate: x509.Certificate) -> tuple[x509.GeneralName, ...]:
    try:
        return tuple(certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return ()


def _check_same_identity(csr_bytes: bytes, subject: x509.Name,
                         sans: tuple[x509.GeneralName, ...]) -> None:
    try:
        csr = decode_certification_request(csr_bytes)
        asked = requested_sans(csr)
    except DecodeError as exc:
        raise PolicyError(R.MALFORMED_REQUEST, str(exc)) from exc
    if csr.subject != subject or (asked and set(asked) != set(sans)):
        raise PolicyError(R.IDENTITY_MISMATCH, "a renewal must ask for the subject and SANs of "
                                               "the current certificate")


def registration_for_secret(uow: UnitOfWork, name: str) -> Registration | None:
    """The secret registration a client names (CMP senderKID, EST user name): its id, or the
    reference of a reusable credential. Both are indexed look-ups, done before any costly
    secret check."""
    return uow.registrations.get(name) or uow.registrations.by_reference(name)


class OneTimeSecret:
    """First provisioning: the registration's one-time secret (HTTP Basic, CMP PBM)."""

    name = MethodName.ONE_TIME_SECRET

    def applies(self, request: EnrollmentRequest) -> bool:
        return request.registration_id is not None

    def authorize(self, request: EnrollmentRequest, uow: UnitOfWork, now: datetime) -> Authorization:
        if request.registration_id is None or request.secret is None:
            raise PolicyError(R.BAD_SECRET, "a registration id and its one-time secret are required")
        registration = registration_for_secret(uow, request.registration_id)
        if registration is not None and registration.locked_at is not None:
            raise PolicyError(R.REGISTRATION_LOCKED, "this registration is locked after too "
                                                     "many wrong secrets; an operator unlocks it")
        if (registration is None or registration.secret_hash is None
                or not secret_matches(request.secret, registration.secret_hash)):
            raise SecretRefusedError(registration.id if registration is not None else None)
        if not _matching(request, registration):
            raise PolicyError(R.METHOD_NOT_ALLOWED, "this registration is for another "
                                                    "authority or profile")
        _usable(registration, now)
        return _authorization(registration)


class OperatorApproval:
    """Manual approval: any request may be queued for an operator (`core.ra.approval`);
    the endpoint must name the authority and profile it is for."""

    name = MethodName.MANUAL_APPROVAL

    def applies(self, request: EnrollmentRequest) -> bool:
        return True

    def authorize(self, request: EnrollmentRequest, uow: UnitOfWork, now: datetime) -> Authorization:
        if request.authority is None or request.profile is None:
            raise PolicyError(R.METHOD_NOT_ALLOWED,
                              "manual approval needs an endpoint that names authority and profile")
        presented = fingerprint(request.client_chain[0]) if request.client_chain else None
        return Authorization(request.authority, request.profile, None, None, None,
                             presented=presented, deferred=True)


MANUAL_APPROVAL = MethodName.MANUAL_APPROVAL


def default_methods(external: ExternalRevocation | None = None,
                    grace: Callable[[str], timedelta] | None = None,
                    needs_registration: Callable[[str], bool] | None = None,
                    ) -> tuple[EnrollmentMethod, ...]:
    return (PreviousStageCertificate(external, needs_registration), CurrentCertificate(grace),
            OneTimeSecret(), OperatorApproval())


class EnrollmentService:
    def __init__(self, uow: UnitOfWorkFactory, issuance: IssuanceService, clock: Clock,
                 methods: tuple[EnrollmentMethod, ...] | None = None,
                 guesses: GuessLimits | None = None,
                 queue: ApprovalLimits | None = None,
                 reads: UnitOfWorkFactory | None = None) -> None:
        self._uow = uow
        # Authorization only reads: a read unit never takes SQLite's write lock (issue 21).
        self._reads = reads or uow
        self._guess_limits = guesses or GuessLimits()
        self._client_guesses = ClientRate(self._guess_limits.per_client,
                                          self._guess_limits.window, "wrong secrets")
        self._issuance = issuance
        self._clock = clock
        chosen = methods if methods is not None else default_methods()
        self._methods: Mapping[MethodName, EnrollmentMethod] = {m.name: m for m in chosen}
        self.approval = ManualApproval(uow, issuance, clock, queue)

    @property
    def methods(self) -> tuple[MethodName, ...]:
        return tuple(self._methods)

    def select(self, allowed: Sequence[MethodName],
               request: EnrollmentRequest) -> MethodName | None:
        """The first of `allowed` (an endpoint's methods, in order) that applies to the
        request: the one selection rule of every protocol."""
        return select_method(allowed, lambda name: name in self._methods
                             and self._methods[name].applies(request))

    def enroll(self, request: EnrollmentRequest, method: MethodName,
               attached: AttachedWrites | None = None) -> Issued | Pending | Rejected:
        """`attached`: written in the transaction that stores an issuance's outcome (not
        when the request is refused before issuance or queued for approval)."""
        now = self._clock.now()
        try:
            chosen = self._methods.get(method)
            if chosen is None:
                raise PolicyError(R.METHOD_NOT_ALLOWED, f"unknown enrollment method {method!r}")
            if isinstance(chosen, OneTimeSecret):
                self._client_guesses.check(request.client, now)
            with self._reads() as uow:
                authorization = chosen.authorize(request, uow, now)
            if authorization.deferred:
                return self.approval.submit(request.csr, authorization.authority,
                                            authorization.profile, request.requester,
                                            authorization.presented, request.client)
        except PolicyError as refusal:
            self._refuse(request, method, refusal, now)
            return Rejected(refusal.reason, refusal.detail)
        return self._issuance.issue(IssuanceRequest(
            authority=authorization.authority, profile=authorization.profile, csr=request.csr,
            requester=request.requester, subject=authorization.subject, sans=authorization.sans,
            method=method, registration=authorization.registration,
            component_digest=authorization.component_digest, device=authorization.device,
            presented=authorization.presented, attached=attached))

    def check(self, request: EnrollmentRequest, method: MethodName) -> Authorization:
        """Authorize without issuing or auditing; `PolicyError` if refused. ACME decides a
        device-attest-01 challenge with it; the certificate is issued later by `enroll`."""
        chosen = self._methods.get(method)
        if chosen is None:
            raise PolicyError(R.METHOD_NOT_ALLOWED, f"unknown enrollment method {method!r}")
        with self._reads() as uow:
            return chosen.authorize(request, uow, self._clock.now())

    def _refuse(self, request: EnrollmentRequest, method: MethodName, refusal: PolicyError,
                now: datetime) -> None:
        presented = fingerprint(request.client_chain[0]) if request.client_chain else None
        details = {"reason": refusal.reason.value, "detail": refusal.detail, "method": method,
                   "presented": presented, "registration": request.registration_id,
                   "authority": request.authority}
        with self._uow() as uow:
            append_audit(uow.audit, now, AuditRecord(
                "enrollment.authorize", "refused", request.requester,
                request.authority or "-", details))
            uow.events.add(Event("enrollment.refused", now, details))
            if isinstance(refusal, SecretRefusedError):
                self._note_wrong_secret(uow, request, refusal.registration, now)
            uow.commit()

    def _note_wrong_secret(self, uow: UnitOfWork, request: EnrollmentRequest,
                           registration: str | None, now: datetime) -> None:
        """Count the guess per client and per registration; lock it at the limit."""
        self._client_guesses.note(request.client, now)
        if registration is None:
            return
        if uow.registrations.note_failed_secret(registration, now,
                                                self._guess_limits.lock_after):
            details = {"failed_secrets": self._guess_limits.lock_after,
                       "last_requester": request.requester}
            append_audit(uow.audit, now, AuditRecord(
                "registration.lock", "success", "iotpki", registration, details))
            uow.events.add(Event("registration.locked", now,
                                 {"registration": registration, **details}))
