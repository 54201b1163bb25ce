"""The CMC server (RFC 5272, RFC 5274 §4 for a CA): one Full PKI Request in, one signed
PKIResponse out, whatever happened; `protocols.cmc.routes` carries the bytes over EST
(RFC 7030 §4.3) or plain HTTP (RFC 5273).

Order of checks: the SignedData and PKIData decode (badRequest; an AuthenticatedData is
authDataFail), the context controls (transactionId, senderNonce, §6.6) are read so that
even a refusal echoes them, signingTime is within the clock skew (badTime), every control
is one we serve (unsupportedExt for addExtensions, badRequest for others), then one
operation:

- a certification request (§3.2.1.3: PKCS #10 or CRMF), signed by a certificate or by
  its own key (`protocols.cmc.identity`), with an identity proof or not: enrollment through
  the endpoint's methods (`EndpointEnrollment`, `EnrollmentService.select`), renewal when
  the signer is a certificate of the endpoint's CA (a new key is required: noKeyReuse);
- revokeRequest controls (§6.11, `protocols.cmc.revocation`): by the holder, or by an RA
  principal's certificate;
- queryPending (§6.13) for a request awaiting manual approval (its pendToken).

Every answer is signed with the CA's CMC signing certificate (the `cmp-protection`
service certificate, EKU id-kp-cmcCA, RFC 6402 §2.10); it is loaded before anything is
issued, so a certificate is never issued into an answer that cannot be signed. Refusals of
the adapter are audited (`cmc.request`, refused); the core audits its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.bounds import bounded
from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.profile import Profile
from iotpki.core.ca.service_certificates import ServiceSigner
from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError
from iotpki.core.keyring import SecretSealer
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.endpoint_enrollment import Refusal
from iotpki.core.ra.endpoints import Endpoint
from iotpki.core.ra.enrollment import EnrollmentRequest, fingerprint
from iotpki.core.ra.pending import PendingRequest
from iotpki.protocols.channel_binding import (
    ChannelBindingError,
    SessionBinding,
    check_channel_binding,
)
from iotpki.protocols.cmc.identity import (
    UNREADABLE,
    SharedSecret,
    Signer,
    known_key,
    request_keys,
    shared_secret,
    signer_info,
    verified_signer,
)
from iotpki.protocols.cmc.refusals import FAIL_INFO_FOR_REASON, CMCFailure
from iotpki.protocols.cmc.revocation import CMCRevocation, Principals, Revocations
from iotpki.wire.cmc.pki_data import (
    ADD_EXTENSIONS,
    IDENTIFICATION,
    IDENTITY_PROOF,
    IDENTITY_PROOF_V2,
    QUERY_PENDING,
    REVOKE_REQUEST,
    SENDER_NONCE,
    TRANSACTION_ID,
    Control,
    PKIData,
    TaggedRequest,
    decode_nonce,
    decode_query_pending,
    decode_revoke_request,
    decode_transaction_id,
)
from iotpki.wire.cmc.request import FullPKIRequest, decode_full_pki_request
from iotpki.wire.cmc.response import CMCStatus, PKIResponse, StatusInfo, sign_pki_response
from iotpki.wire.cmc.signed_data import AuthenticatedDataError
from iotpki.wire.cmp.crmf import CRMFRequest
from iotpki.wire.csr import decode_certification_request
from iotpki.wire.errors import DecodeError, PKIError

log = logging.getLogger(__name__)
CLOCK_SKEW = timedelta(minutes=5)
MAX_NONCE = 128  # octets of a senderNonce we echo
MAX_TOKEN = 128  # octets of a pendToken
_SERVED = {IDENTIFICATION, IDENTITY_PROOF, IDENTITY_PROOF_V2, TRANSACTION_ID, SENDER_NONCE,
           REVOKE_REQUEST, QUERY_PENDING}
Outcome = Issued | Pending | Rejected


class CMCEnrollment(Protocol):
    """What CMC needs from `core.ra.endpoint_enrollment.EndpointEnrollment`."""

    def endpoint(self, protocol: str, label: str) -> Endpoint: ...

    def enroll(self, endpoint: Endpoint, request: EnrollmentRequest) -> Outcome: ...

    def renew(self, endpoint: Endpoint, request: EnrollmentRequest) -> Outcome: ...

    def refuse(self, refusal: Refusal) -> None: ...


class Approvals(Protocol):
    """What CMC needs from `core.ra.approval.ManualApproval`."""

    def poll(self, request_id: str) -> Outcome: ...

    def get(self, request_id: str) -> PendingRequest: ...


class ServiceSigners(Protocol):
    def current(self, owner: str, purpose: Purpose, issuer: str | None = None,
                actor: str | None = None) -> ServiceSigner: ...


class UnsignableError(PKIError):
    """No PKIResponse can be signed (the CA's CMC signing certificate is unavailable)."""


@dataclass(frozen=True)
class CMCAnswer:
    der: bytes  # ContentInfo(SignedData(PKIResponse))
    fail_info: str | None = None  # of the first failed status, if any


@dataclass
class _Exchange:
    endpoint: Endpoint
    operation: str  # "fullcmc" (EST) or "cmc" (RFC 5273)
    address: str
    now: datetime
    requester: str
    transaction_id: int | None = None
    nonce: bytes | None = None
    binding: SessionBinding | None = None  # the TLS channel binding (EST only)
    certificates: list[x509.Certificate] = field(default_factory=list)  # issued ones


class CMCServer:
    def __init__(self, enrollment: CMCEnrollment, approvals: Approvals,
                 revocations: Revocations, signers: ServiceSigners, reads: UnitOfWorkFactory,
                 sealer: SecretSealer | None, profiles: Mapping[str, Profile], clock: Clock,
                 skew: timedelta = CLOCK_SKEW, principals: Principals | None = None) -> None:
        self._enrollment = enrollment
        self._approvals = approvals
        self._signers = signers
        self._uow = reads  # the adapter only reads; the core writes (issue 21)
        self._sealer = sealer
        self._clock = clock
        self._skew = skew
        self._revocation = CMCRevocation(reads, revocations, profiles, principals)

    def answer(self, protocol: str, label: str, body: bytes, address: str = "-",
               problem: str | None = None,
               binding: SessionBinding | None = None) -> CMCAnswer:
        """The signed answer to `body`; `NotFoundError` for an unknown label,
        `UnsignableError` when no answer can be signed. `problem`: the transport could not
        read the body (answered badRequest). `binding`: the TLS session's channel binding
        (tls-unique or tls-exporter) of an EST request, if it can be had."""
        endpoint = self._enrollment.endpoint(protocol, label)
        signer = self._service_signer(endpoint)
        exchange = _Exchange(endpoint, "fullcmc" if protocol == "est" else "cmc", address,
                             self._clock.now(), f"cmc:{address}", binding=binding)
        try:
            if problem is not None:
                raise CMCFailure("badRequest", problem)
            request = _decoded(body)
            _read_context(exchange, request.data)
            statuses = self._serve(exchange, request)
        except (CMCFailure, DecodeError) as refused:
            failure = (refused if isinstance(refused, CMCFailure)
                       else CMCFailure("badRequest", str(refused)))
            self._audit(exchange, failure)
            statuses = (_failed(failure),)
        except Exception:  # a fault of ours is still a CMC answer (never an HTTP 500)
            log.exception("CMC request on %s endpoint %r failed", protocol, label)
            failure = CMCFailure("internalCAError", "internal error; the request was not "
                                                    "served")
            try:
                self._audit(exchange, failure)
            except Exception:
                log.exception("CMC fault on endpoint %r could not be audited", label)
            statuses = (_failed(failure),)
        response = PKIResponse(statuses, exchange.transaction_id, os.urandom(16),
                               exchange.nonce)
        failed = next((s.fail_info for s in statuses if s.status is CMCStatus.FAILED), None)
        return CMCAnswer(self._sign(signer, response, exchange.certificates), failed)

    # -- signing ----------------------------------------------------------------------------

    def _service_signer(self, endpoint: Endpoint) -> ServiceSigner:
        try:
            return self._signers.current(endpoint.authority, Purpose.CMP_PROTECTION)
        except Exception as exc:
            log.exception("no CMC signing certificate for %s", endpoint.authority)
            raise UnsignableError("the CA's CMC signing certificate is unavailable; try "
                                  "again later") from exc

    @staticmethod
    def _sign(signer: ServiceSigner, response: PKIResponse,
              issued: list[x509.Certificate]) -> bytes:
        bag: list[x509.Certificate] = []
        for certificate in (signer.certificate, *signer.chain, *issued):
            if certificate not in bag:
                bag.append(certificate)
        try:
            return sign_pki_response(response, signer.key, bag)
        except Exception as exc:
            log.exception("CMC answer could not be signed")
            raise UnsignableError("the answer could not be signed; try again later") from exc

    # -- one operation ----------------------------------------------------------------------

    def _serve(self, exchange: _Exchange, request: FullPKIRequest) -> tuple[StatusInfo, ...]:
        data = request.data
        self._check_time(exchange, signer_info(request).signing_time)
        _check_controls(data)
        query = data.control(QUERY_PENDING)
        revocations = [c for c in data.controls if c.type == REVOKE_REQUEST]
        operations = sum((query is not None, bool(revocations), bool(data.requests)))
        if operations != 1:
            raise CMCFailure("badRequest", "one operation per PKIData: a certification "
                                           "request, revokeRequest controls, or queryPending")
        if query is not None:
            return (self._poll(exchange, request, query),)
        if revocations:
            return self._revoke(exchange, request, revocations)
        return (self._enroll(exchange, request),)

    def _check_time(self, exchange: _Exchange, signing_time: datetime | None) -> None:
        if signing_time is not None and abs(signing_time - exchange.now) > self._skew:
            raise CMCFailure("badTime", f"signingTime {signing_time.isoformat()} is more than "
                                        f"{self._skew} from the server's time")

    def _enroll(self, exchange: _Exchange, request: FullPKIRequest) -> StatusInfo:
        data = request.data
        if len(data.requests) != 1:
            raise CMCFailure("badRequest", "one certification request per PKIData")
        tagged = data.requests[0]
        signer = verified_signer(request, request_keys(data.requests))
        _check_possession(tagged)
        if exchange.operation == "fullcmc":
            _check_binding(tagged, exchange.binding, exchange.endpoint.channel_binding)
        secret = shared_secret(data, self._uow, self._sealer)
        exchange.requester = _requester(exchange.address, signer, secret)
        enrollment = EnrollmentRequest(
            csr=tagged.der, requester=exchange.requester, client_chain=signer.chain,
            possession="cmc-signature" if signer.certificate is not None else None,
            registration_id=secret.registration if secret is not None else None,
            secret=secret.secret if secret is not None else None, client=exchange.address)
        endpoint = exchange.endpoint
        if (signer.certificate is not None and secret is None
                and self._issued_by(signer.certificate, endpoint.authority)):
            _check_new_key(tagged, signer.certificate)
            outcome = self._enrollment.renew(endpoint, enrollment)
        else:
            outcome = self._enrollment.enroll(endpoint, enrollment)
        return self._status(exchange, outcome, tagged.body_part_id)

    def _issued_by(self, certificate: x509.Certificate, authority: str) -> bool:
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(fingerprint(certificate))
        return record is not None and record.authority == authority

    def _status(self, exchange: _Exchange, outcome: Outcome, body_part: int) -> StatusInfo:
        if isinstance(outcome, Issued):
            exchange.certificates.append(outcome.certificate)
            return StatusInfo(CMCStatus.SUCCESS, (body_part,))
        if isinstance(outcome, Pending):  # §6.1.1 PendInfo; polled with queryPending
            return StatusInfo(CMCStatus.PENDING, (body_part,), "awaits an operator's approval",
                              pend_token=f"{outcome.request_id}:{body_part}".encode(),
                              pend_time=exchange.now + timedelta(
                                  seconds=outcome.retry_after_seconds))
        return StatusInfo(CMCStatus.FAILED, (body_part,),
                          f"{outcome.reason.value}: {outcome.detail}",
                          FAIL_INFO_FOR_REASON[outcome.reason])

    def _poll(self, exchange: _Exchange, request: FullPKIRequest, query: Control) -> StatusInfo:
        token = decode_query_pending(query.value)
        if len(token) > MAX_TOKEN:
            raise CMCFailure("badRequest", "pendToken too long")
        request_id, _, part = token.decode("ascii", "replace").partition(":")
        try:
            pending = self._approvals.get(request_id)
        except NotFoundError as exc:
            raise CMCFailure("badRequest", "queryPending names no pending request") from exc
        try:
            key = decode_certification_request(pending.csr).public_key()
        except UNREADABLE as exc:
            raise CMCFailure("internalCAError", "the pending request cannot be read") from exc
        signer = verified_signer(request, [known_key(key)])
        if signer.certificate is not None and fingerprint(signer.certificate) != \
                pending.presented:
            raise CMCFailure("badIdentity", "queryPending is signed by the requester (the "
                                            "request's key or certificate)")
        exchange.requester = pending.requester
        body_part = int(part) if part.isdigit() and len(part) < 11 else 0
        return self._status(exchange, self._approvals.poll(request_id), body_part)

    def _revoke(self, exchange: _Exchange, request: FullPKIRequest,
                controls: list[Control]) -> tuple[StatusInfo, ...]:
        if signer_info(request).key_id is not None:  # §6.11: no certificate, no revocation
            raise CMCFailure("badIdentity", "a revokeRequest is signed with the certificate "
                                            "it names (a passphrase authenticates nothing "
                                            "here)", tuple(c.body_part_id for c in controls))
        signer = verified_signer(request)
        exchange.requester = _requester(exchange.address, signer, None)
        statuses = []
        for control in controls:  # each revokeRequest gets its own status (§6.11)
            try:
                statuses.append(self._revocation.revoke(
                    control.body_part_id, decode_revoke_request(control.value), signer,
                    exchange.requester))
            except CMCFailure as failure:
                self._audit(exchange, failure)
                statuses.append(_failed(failure))
            except DecodeError as exc:
                malformed = CMCFailure("badRequest", str(exc), (control.body_part_id,))
                self._audit(exchange, malformed)
                statuses.append(_failed(malformed))
        return tuple(statuses)

    def _audit(self, exchange: _Exchange, failure: CMCFailure) -> None:
        self._enrollment.refuse(Refusal(
            "cmc", exchange.endpoint.label, exchange.requester, failure.reason,
            f"{failure.fail_info}: {failure.detail}", exchange.operation))


def _decoded(body: bytes) -> FullPKIRequest:
    try:
        return decode_full_pki_request(body)
    except AuthenticatedDataError as exc:
        raise CMCFailure("authDataFail", str(exc)) from exc
    except DecodeError as exc:
        raise CMCFailure("badRequest", str(exc)) from exc


def _read_context(exchange: _Exchange, data: PKIData) -> None:
    """§6.6: transactionId is echoed, senderNonce comes back as recipientNonce."""
    try:
        transaction = data.control(TRANSACTION_ID)
        nonce = data.control(SENDER_NONCE)
        if transaction is not None:
            exchange.transaction_id = decode_transaction_id(transaction.value)
        if nonce is not None:
            exchange.nonce = decode_nonce(nonce.value)
    except DecodeError as exc:
        raise CMCFailure("badRequest", str(exc)) from exc
    if exchange.nonce is not None and len(exchange.nonce) > MAX_NONCE:
        exchange.nonce = None
        raise CMCFailure("badRequest", f"senderNonce longer than {MAX_NONCE} octets")
    if exchange.transaction_id is not None and not 0 <= exchange.transaction_id < 2**160:
        exchange.transaction_id = None
        raise CMCFailure("badRequest", "transactionId out of range")


def _check_controls(data: PKIData) -> None:
    for control in data.controls:
        if control.type == ADD_EXTENSIONS:
            raise CMCFailure("unsupportedExt", "RFC 5272 §6.5.2: addExtensions is not "
                                               "served; extensions come from the profile",
                             (control.body_part_id,))
        if control.type not in _SERVED:
            raise CMCFailure("badRequest", f"control {control.type} is not served",
                             (control.body_part_id,))
    if data.cms_count or data.other_count:
        raise CMCFailure("badRequest", "cmsSequence and otherMsgSequence are not served")


def _check_possession(tagged: TaggedRequest) -> None:
    """A CRMF request proves possession with a signature (RFC 4211 §4.1); none, or
    raVerified from a client, is popRequired. A template without a key is not served."""
    if tagged.kind != "crmf":
        return
    try:
        request = decode_certification_request(tagged.der)
    except DecodeError as exc:
        raise CMCFailure("badRequest", str(exc), (tagged.body_part_id,)) from exc
    if not isinstance(request, CRMFRequest):
        raise CMCFailure("badRequest", "the crm body part is not a CertReqMsg",
                         (tagged.body_part_id,))
    if request.central_keygen:
        raise CMCFailure("badRequest", "a template without a public key (a server-generated "
                                       "key) is not served over CMC", (tagged.body_part_id,))
    if request.pop_kind != "signature":
        raise CMCFailure("popRequired", "RFC 4211 §4.1: prove possession with a signature",
                         (tagged.body_part_id,))


def _check_binding(tagged: TaggedRequest, binding: SessionBinding | None,
                   required: bool) -> None:
    """RFC 7030 §3.5 over /fullcmc as over simpleenroll, by the same check: a PKCS #10
    request's challengePassword, when it carries one, is the TLS session's channel binding;
    an endpoint with `channel_binding: true` requires it (popFailed otherwise: identity and
    proof of possession are not linked). A CRMF request has no challengePassword."""
    part = (tagged.body_part_id,)
    if tagged.kind != "pkcs10":
        if required:
            raise CMCFailure("popFailed", "this endpoint requires the TLS channel binding "
                                          "(tls-unique or tls-exporter) in a PKCS #10 "
                                          "challengePassword (RFC 7030 §3.5)", part)
        return
    try:
        check_channel_binding(tagged.der, binding, required)
    except ChannelBindingError as exc:  # 400: unreadable request; 403: not bound
        fail = "badRequest" if exc.status == 400 else "popFailed"
        raise CMCFailure(fail, exc.detail, part) from exc


def _check_new_key(tagged: TaggedRequest, current: x509.Certificate) -> None:
    """Renewal with the current certificate asks for a new key (noKeyReuse)."""
    try:
        key: Any = decode_certification_request(tagged.der).public_key()
    except UNREADABLE:
        return  # the issuance path refuses it with its own reason
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_bytes(serialization.Encoding.DER, spki) == current.public_key().public_bytes(
            serialization.Encoding.DER, spki):
        raise CMCFailure("noKeyReuse", "a renewal certifies a new key, not the current "
                                       "certificate's", (tagged.body_part_id,))


def _requester(address: str, signer: Signer, secret: SharedSecret | None) -> str:
    if secret is not None:
        return bounded(f"cmc:{secret.registration}@{address}", 160)
    if signer.certificate is not None:
        return bounded(f"cmc:{signer.certificate.subject.rfc4514_string()}@{address}", 160)
    return f"cmc:{address}"


def _failed(failure: CMCFailure) -> StatusInfo:
    return StatusInfo(CMCStatus.FAILED, failure.body_parts, failure.detail, failure.fail_info)
