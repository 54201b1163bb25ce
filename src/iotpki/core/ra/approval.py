"""Manual approval: a request is kept until an operator approves (it is then issued on the
single issuance path) or rejects it. Clients poll with the request id (CMP pollReq, RFC 9483
§4.4) or by sending the same request again (EST 202 + Retry-After, RFC 7030 §4.2.3): the
same subject and public key on the same authority and profile (`pending.request_key`) find
the request already queued, never a second one.

RFC 7030 §3.2.3 (credentials before approval): where a protocol can ask for credentials
(HTTP 401) and the endpoint also takes one-time secrets, a request without credentials is
challenged first and remembered (`challenge`); only the same request sent again without
credentials within `ApprovalLimits.challenge_memory` shows that the client chose not to
authenticate, and is queued (`core.ra.endpoint_enrollment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest, IssuanceService
from iotpki.core.clock import Clock
from iotpki.core.errors import ConflictError, NotFoundError, PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.events import Event
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.ra.guessing import ClientRate
from iotpki.core.ra.pending import PendingRequest, PendingStatus, request_key
from iotpki.core.ra.registration import new_registration_id
from iotpki.wire.csr import BadSignatureError, decode_csr, verify_csr
from iotpki.wire.errors import DecodeError

RETRY_AFTER_SECONDS = 60


@dataclass(frozen=True)
class ApprovalLimits:
    """Requests without credentials must not fill the approval queue (issue 15 item 14)."""

    pending_per_label: int = 1000  # undecided requests per (authority, profile)
    per_client: int = 10  # submissions one client address may make within `window`
    window: timedelta = timedelta(minutes=1)
    # How long a 401 challenge to a request without credentials is remembered (its repeat
    # without credentials within this time is queued); challenges remembered per client
    # address and `window` are capped at `per_client` too (past that: 401, not remembered).
    challenge_memory: timedelta = timedelta(days=1)


def check_possession(csr: bytes) -> None:
    """RFC 2986 §3: a PKCS#10 request must be signed by its key before it is queued for an
    operator, or answered from the queue (which would tell its state to anyone who knows a
    subject and public key). CMP's CRMF requests have their proof checked by the CMP server."""
    try:
        request = decode_csr(csr)
    except DecodeError:
        return
    try:
        verify_csr(request)
    except BadSignatureError as exc:
        raise PolicyError(R.BAD_SIGNATURE, str(exc)) from exc


class ManualApproval:
    def __init__(self, uow: UnitOfWorkFactory, issuance: IssuanceService, clock: Clock,
                 limits: ApprovalLimits | None = None) -> None:
        self._uow = uow
        self._issuance = issuance
        self._clock = clock
        self._limits = limits or ApprovalLimits()
        self._submissions = ClientRate(self._limits.per_client, self._limits.window,
                                       "requests for approval")
        self._challenges = ClientRate(self._limits.per_client, self._limits.window,
                                      "requests without credentials")

    def submit(self, csr: bytes, authority: str | None, profile: str | None, requester: str,
               presented: str | None, client: str | None = None) -> Pending:
        if authority is None or profile is None:
            raise PolicyError(R.METHOD_NOT_ALLOWED,
                              "manual approval needs an endpoint that names authority and profile")
        check_possession(csr)
        now = self._clock.now()
        self._submissions.check(client, now)
        pending = PendingRequest(new_registration_id(), authority, profile, csr, requester, now,
                                 presented, request_key=request_key(csr))
        with self._uow() as uow:
            if uow.authorities.get(authority) is None:
                raise PolicyError(R.UNKNOWN_AUTHORITY, f"unknown authority {authority!r}")
            if uow.pending.count_pending(authority, profile) >= self._limits.pending_per_label:
                raise PolicyError(R.APPROVAL_QUEUE_FULL, f"{self._limits.pending_per_label} "
                                  f"requests for {authority}/{profile} await an operator; "
                                  f"try again later")
            self._submissions.note(client, now)
            if not uow.pending.add(pending) and pending.request_key is not None:
                # §4.2.3: a concurrent repeat of this request was queued first; it is the one.
                first = uow.pending.for_request(authority, profile, pending.request_key)
                if first is not None:
                    return Pending(first.id, RETRY_AFTER_SECONDS)
            self._audit(uow, now, requester, "enrollment.submit", pending, "success", {})
            uow.events.add(Event("enrollment.pending", now, {"request": pending.id,
                                                             "authority": authority}))
            uow.commit()
        return Pending(pending.id, RETRY_AFTER_SECONDS)

    def repeated(self, authority: str, profile: str,
                 csr: bytes) -> Issued | Pending | Rejected | None:
        """The answer to a request queued before for the same subject and public key (RFC 7030
        §4.2.3): pending, the certificate once approved (while it is good and valid: a
        revoked or expired one is not an answer, the request is then a new one), the refusal
        once rejected; None if there is none."""
        key = request_key(csr)
        if key is None:
            return None
        with self._uow() as uow:
            pending = uow.pending.for_request(authority, profile, key)
        if pending is None:
            return None
        outcome = self.poll(pending.id)
        if isinstance(outcome, Issued) and (
                outcome.record.status is not CertificateStatus.GOOD
                or outcome.record.not_after <= self._clock.now()):
            return None
        return outcome

    def challenge(self, authority: str, profile: str, csr: bytes, client: str | None) -> None:
        """Remember that this request came without credentials and was challenged."""
        key = request_key(csr)
        now = self._clock.now()
        try:
            self._challenges.check(client, now)
        except PolicyError:
            return  # challenged all the same, not remembered: nothing of it can be queued
        if key is None:
            return
        with self._uow() as uow:
            if uow.authorities.get(authority) is None:
                return
            uow.pending.note_challenge(authority, profile, key, now,
                                       now - self._limits.challenge_memory)
            uow.commit()
        self._challenges.note(client, now)

    def challenged(self, authority: str, profile: str, csr: bytes) -> bool:
        """Whether this request was challenged within the challenge memory: sent again
        without credentials, the client chose not to authenticate (RFC 7030 §3.2.3)."""
        key = request_key(csr)
        if key is None:
            return False
        since = self._clock.now() - self._limits.challenge_memory
        with self._uow() as uow:
            return uow.pending.challenged(authority, profile, key, since)

    def poll(self, request_id: str) -> Issued | Pending | Rejected:
        pending = self.get(request_id)
        if pending.status is PendingStatus.PENDING:
            return Pending(pending.id, RETRY_AFTER_SECONDS)
        if pending.status is PendingStatus.REJECTED or pending.certificate is None:
            return Rejected(R.METHOD_NOT_ALLOWED, f"rejected by an operator: {pending.reason}")
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(pending.certificate)
            authority = uow.authorities.get(pending.authority)
        assert record is not None and authority is not None  # written when approved
        return Issued(record, record.certificate, authority.full_chain)

    def approve(self, request_id: str, actor: str) -> Issued | Rejected:
        pending = self._undecided(request_id)
        outcome = self._issuance.issue(IssuanceRequest(
            pending.authority, pending.profile, pending.csr, pending.requester,
            method=MethodName.MANUAL_APPROVAL))
        status = PendingStatus.APPROVED if isinstance(outcome, Issued) else PendingStatus.REJECTED
        certificate = outcome.record.fingerprint if isinstance(outcome, Issued) else None
        reason = outcome.detail if isinstance(outcome, Rejected) else None
        self._decide(pending, status, actor, certificate, reason)
        return outcome

    def reject(self, request_id: str, actor: str, reason: str) -> None:
        self._decide(self._undecided(request_id), PendingStatus.REJECTED, actor, None, reason)

    def get(self, request_id: str) -> PendingRequest:
        with self._uow() as uow:
            pending = uow.pending.get(request_id)
        if pending is None:
            raise NotFoundError(f"unknown request {request_id!r}")
        return pending

    def find(self, status: PendingStatus | None = PendingStatus.PENDING, limit: int = 100,
             offset: int = 0, authorities: Sequence[str] | None = None) -> list[PendingRequest]:
        """Oldest first; `authorities`: only requests to these (an organization's queue)."""
        with self._uow() as uow:
            return uow.pending.find(status.value if status else None, limit, offset,
                                    authorities)

    def _undecided(self, request_id: str) -> PendingRequest:
        pending = self.get(request_id)
        if pending.status is not PendingStatus.PENDING:
            raise ConflictError(f"request {request_id} was {pending.status.value} already")
        return pending

    def _decide(self, pending: PendingRequest, status: PendingStatus, actor: str,
                certificate: str | None, reason: str | None) -> None:
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.pending.decide(pending.id, status.value, now, actor, certificate, reason):
                raise ConflictError(f"request {pending.id} was decided already")
            self._audit(uow, now, actor, f"enrollment.{status.value}", pending,
                        "success" if status is PendingStatus.APPROVED else "refused",
                        {"reason": reason, "certificate": certificate})
            uow.commit()

    @staticmethod
    def _audit(uow: UnitOfWork, now: datetime, actor: str, action: str, pending: PendingRequest,
               outcome: str, details: dict[str, str | None]) -> None:
        append_audit(uow.audit, now, AuditRecord(action, outcome, actor, pending.id, {
            "authority": pending.authority, "profile": pending.profile,
            "requester": pending.requester, **details}))
