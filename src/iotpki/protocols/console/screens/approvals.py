"""Screen 7, approvals: the organization's queue of requests waiting for manual approval
(requests to its authorities), each with what the CSR asks for; approve (the certificate is
issued through the same policy as any request) or reject with a reason. Deciding is the
registration authority's work: admin and registrar (`Action.REGISTER`)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from starlette.responses import RedirectResponse, Response

from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.outcomes import Issued
from iotpki.core.ra.pending import PendingRequest, PendingStatus
from iotpki.protocols.console.context import PREFIX, Visit
from iotpki.wire.csr import decode_csr
from iotpki.wire.errors import DecodeError

QUEUE, DECIDED = 200, 20
MAX_REASON = 256


@dataclass(frozen=True)
class Queued:
    request: PendingRequest
    subject: str
    sans: str


def _own_authorities(visit: Visit) -> list[str]:
    return [a.label for a in visit.services.authorities.list()
            if a.organization == visit.principal.organization]


def _queued(request: PendingRequest) -> Queued:
    """What the request asks for, from its CSR (a CMP request's CRMF is not a CSR)."""
    try:
        csr = decode_csr(request.csr)
    except (DecodeError, ValueError):
        return Queued(request, "(CRMF request)", "")
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = ", ".join(str(n.value) for n in sans)
    except x509.ExtensionNotFound:
        names = ""
    return Queued(request, csr.subject.rfc4514_string(), names)


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    own, approval = _own_authorities(visit), visit.services.approval
    pending = approval.find(PendingStatus.PENDING, QUEUE, authorities=own) if own else []
    decided = [r for status in (PendingStatus.APPROVED, PendingStatus.REJECTED)
               for r in (approval.find(status, DECIDED, authorities=own) if own else [])]
    decided.sort(key=lambda r: r.decided_at or r.created_at, reverse=True)
    return visit.page("approvals.html", title="Approvals", active="approvals",
                      queue=[_queued(r) for r in pending], decided=decided[:DECIDED],
                      may_decide=visit.may(Action.REGISTER), notice=_notice(visit))


def _notice(visit: Visit) -> str | None:
    return {"approved": "Approved: the certificate was issued.",
            "refused": "Approved, but the policy refused it: see the decided list.",
            "rejected": "Rejected."}.get(visit.query.get("done", ""))


def _owned(visit: Visit, request_id: str) -> PendingRequest:
    if len(request_id) > 36:
        raise NotFoundError("no such request")
    try:
        request = visit.services.approval.get(request_id)
    except NotFoundError:
        raise NotFoundError("no such request") from None
    if request.authority not in _own_authorities(visit):
        raise NotFoundError("no such request")
    return request


def decide(visit: Visit, request_id: str) -> Response:
    request = _owned(visit, request_id)
    authorize(visit.principal, Action.REGISTER)
    decision, actor = visit.form.get("decision", ""), visit.principal.actor
    if decision == "approve":
        outcome = visit.services.approval.approve(request.id, actor)
        done = "approved" if isinstance(outcome, Issued) else "refused"
    elif decision == "reject":
        reason = visit.form.get("reason", "").strip()
        if not reason or len(reason) > MAX_REASON:
            raise ConfigurationError(f"a rejection needs a reason (at most {MAX_REASON} "
                                     "characters)")
        visit.services.approval.reject(request.id, actor, reason)
        done = "rejected"
    else:
        raise ConfigurationError("decide approve or reject")
    return RedirectResponse(f"{PREFIX}/approvals?done={done}", 303)
