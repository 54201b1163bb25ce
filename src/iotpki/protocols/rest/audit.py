"""The audit log, as far as it concerns the principal's organization (admin, auditor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from iotpki.core.integration.access import Action, authorize
from iotpki.protocols.rest.context import CurrentPrincipal, Services
from iotpki.protocols.rest.models import AuditEntryOut, audit_out
from iotpki.protocols.rest.pagination import Page, PageRequest, encode_cursor, page_request
from iotpki.protocols.rest.problems import COMMON_PROBLEMS

router = APIRouter(tags=["audit"], responses=COMMON_PROBLEMS)


@router.get("/audit", response_model=Page[AuditEntryOut])
def list_audit(principal: CurrentPrincipal, api: Services,
               page: Annotated[PageRequest, Depends(page_request)]) -> Page[AuditEntryOut]:
    """Entries in sequence order; each carries its hash in the chain (`iotpki audit verify`
    checks the whole chain). Keyset pagination on the sequence number: a page reads at most
    20,000 entries of the log, so a page may be short (even empty) while `next_cursor`
    still leads on."""
    authorize(principal, Action.READ_AUDIT)
    found = api.audit.page_for(principal.organization, page.position, page.limit + 1)
    shown = found.entries[:page.limit]
    if len(found.entries) > page.limit:
        next_cursor: str | None = encode_cursor(shown[-1].seq)
    else:  # a page whose scan was spent before it filled up still says where to go on
        next_cursor = encode_cursor(found.next_after) if found.next_after is not None else None
    return Page[AuditEntryOut](items=[audit_out(e) for e in shown], limit=page.limit,
                               next_cursor=next_cursor)
