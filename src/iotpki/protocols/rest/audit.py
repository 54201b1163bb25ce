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
    checks the whole chain)."""
    authorize(principal, Action.READ_AUDIT)
    entries = api.audit.entries_for(principal.organization, page.position, page.limit + 1)
    shown = entries[:page.limit]
    more = len(entries) > page.limit
    return Page[AuditEntryOut](items=[audit_out(e) for e in shown], limit=page.limit,
                               next_cursor=encode_cursor(shown[-1].seq) if more else None)
