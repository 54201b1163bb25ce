"""Certificates of the principal's organization: list with filters, show, revoke one,
revoke every certificate a filter matches (one transaction)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime
from starlette.responses import Response

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.integration.principal import Principal
from iotpki.core.revocation.reasons import parse_reason
from iotpki.protocols.rest.context import (
    APIServices,
    CurrentPrincipal,
    IdempotencyKey,
    Services,
    request_hash,
    run_idempotent,
)
from iotpki.protocols.rest.directory import owned_authority
from iotpki.protocols.rest.models import (
    LABEL,
    SERIAL,
    BulkRevoke,
    BulkRevoked,
    CertificateDetail,
    CertificateFilter,
    CertificateOut,
    Revoke,
    certificate_detail,
    certificate_out,
)
from iotpki.protocols.rest.pagination import Page, PageRequest, keyset_page, page_request
from iotpki.protocols.rest.problems import COMMON_PROBLEMS, WRITE_PROBLEMS

router = APIRouter(tags=["certificates"])
AuthorityPath = Annotated[str, Path(pattern=LABEL)]
SerialPath = Annotated[str, Path(pattern=SERIAL, description="Serial number, hex")]


def certificate_filter(
    status: Annotated[CertificateStatus | None, Query()] = None,
    authority: Annotated[str | None, Query(pattern=LABEL)] = None,
    profile: Annotated[str | None, Query(max_length=63)] = None,
    expiring_before: Annotated[AwareDatetime | None, Query(
        description="notAfter before this time (ISO 8601 with zone)")] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=1024,
                                         description="Substring of the subject")] = None,
) -> CertificateFilter:
    return CertificateFilter(status=status, authority=authority, profile=profile,
                             expiring_before=expiring_before, subject=subject)


def _query(api: APIServices, principal: Principal, selection: CertificateFilter,
           limit: int | None = None, after: int | None = None) -> CertificateQuery:
    """The filter, confined to the principal's organization."""
    if selection.authority is not None:
        owned_authority(api, principal.organization, selection.authority)
    return CertificateQuery(
        authority=selection.authority, status=selection.status, profile=selection.profile,
        subject_contains=selection.subject, expires_before=selection.expiring_before,
        organization=principal.organization, limit=limit, after=after)


def _serial(text: str) -> int:
    return int(text.lower().removeprefix("0x").replace(":", ""), 16)


def _owned(api: APIServices, principal: Principal, authority: str,
           serial: str) -> CertificateRecord:
    owned_authority(api, principal.organization, authority)
    try:
        return api.certificates.get(authority, _serial(serial))
    except NotFoundError:
        raise NotFoundError("no such certificate") from None


@router.get("/certificates", response_model=Page[CertificateOut], responses=COMMON_PROBLEMS)
def list_certificates(
    principal: CurrentPrincipal, api: Services,
    page: Annotated[PageRequest, Depends(page_request)],
    selection: Annotated[CertificateFilter, Depends(certificate_filter)],
    organization: Annotated[str | None, Query(pattern=LABEL, description=(
        "Only the principal's own organization may be named"))] = None,
) -> Page[CertificateOut]:
    """Oldest first; filters combine with AND."""
    authorize(principal, Action.READ, organization, "organization")
    query = _query(api, principal, selection, page.limit + 1, page.position)
    return keyset_page(api.certificates.find(query), page, lambda r: r.position,
                       lambda r: CertificateOut(**certificate_out(r)))


@router.get("/certificates/{authority}/{serial}", responses=COMMON_PROBLEMS)
def get_certificate(authority: AuthorityPath, serial: SerialPath, principal: CurrentPrincipal,
                    api: Services) -> CertificateDetail:
    """One certificate of the organization, with its PEM."""
    record = _owned(api, principal, authority, serial)
    authorize(principal, Action.READ)
    return certificate_detail(record)


@router.post("/certificates/{authority}/{serial}/revoke", responses=WRITE_PROBLEMS)
def revoke_certificate(authority: AuthorityPath, serial: SerialPath, body: Revoke,
                       principal: CurrentPrincipal, api: Services) -> CertificateDetail:
    """Revoke, or hold with reason certificateHold (RFC 5280 §5.3.1); 409 if it already is."""
    _owned(api, principal, authority, serial)
    authorize(principal, Action.REVOKE)
    record = api.revocation.revoke(authority, _serial(serial), parse_reason(body.reason),
                                   principal.actor, body.invalidity_date)
    return certificate_detail(record)


@router.post("/certificates/bulk-revoke", response_model=BulkRevoked, responses=WRITE_PROBLEMS)
def bulk_revoke(body: BulkRevoke, principal: CurrentPrincipal, api: Services,
                key: IdempotencyKey = None) -> Response:
    """Revoke every certificate of the organization that the filter matches, in one
    transaction (all or none); already revoked ones are left as they are. Each is audited."""
    authorize(principal, Action.REVOKE)
    if not body.filter.model_dump(exclude_none=True):
        raise ConfigurationError("a bulk revocation needs at least one filter")
    reason = parse_reason(body.reason)
    query = _query(api, principal, body.filter)

    def revoke() -> BulkRevoked:
        result = api.revocation.revoke_matching(query, reason, principal.actor,
                                                body.invalidity_date)
        return BulkRevoked(revoked=result.revoked, reason=result.reason, at=result.at)

    return run_idempotent(api, principal, key, request_hash("bulk_revoke", body), 200, revoke)
