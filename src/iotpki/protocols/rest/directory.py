"""Read-only directory: the principal's organization, its domains and authorities, and the
certificate profiles (shared by every organization)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path

from iotpki.core.ca.authority import Authority
from iotpki.core.errors import NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.protocols.rest.context import APIServices, CurrentPrincipal, Services
from iotpki.protocols.rest.models import (
    LABEL,
    AuthorityOut,
    DomainOut,
    OrganizationOut,
    ProfileOut,
    authority_out,
    domain_out,
    organization_out,
    profile_out,
)
from iotpki.protocols.rest.pagination import Page, PageRequest, offset_page, page_request
from iotpki.protocols.rest.problems import COMMON_PROBLEMS

T = TypeVar("T")
router = APIRouter(responses=COMMON_PROBLEMS)
Paging = Annotated[PageRequest, Depends(page_request)]
LabelPath = Annotated[str, Path(pattern=LABEL)]


def _window(items: list[T], page: PageRequest) -> Page[T]:
    return offset_page(items[page.position:page.position + page.limit + 1], page)


@router.get("/organizations", tags=["directory"], response_model=Page[OrganizationOut])
def list_organizations(principal: CurrentPrincipal, api: Services,
                       page: Paging) -> Page[OrganizationOut]:
    """The principal's own organization (a principal sees no other)."""
    authorize(principal, Action.READ)
    own = [organization_out(o) for o in api.authorities.organizations()
           if o.label == principal.organization]
    return _window(own, page)


@router.get("/organizations/{organization}", tags=["directory"])
def get_organization(organization: LabelPath, principal: CurrentPrincipal,
                     api: Services) -> OrganizationOut:
    """The principal's organization; any other is not found."""
    authorize(principal, Action.READ, organization, "organization")
    found = [o for o in api.authorities.organizations() if o.label == organization]
    if not found:
        raise NotFoundError("no such organization")
    return organization_out(found[0])


@router.get("/domains", tags=["directory"], response_model=Page[DomainOut])
def list_domains(principal: CurrentPrincipal, api: Services, page: Paging) -> Page[DomainOut]:
    """The operational domains the principal's organization owns."""
    authorize(principal, Action.READ)
    return _window([domain_out(d) for d in api.organizations.domains(principal.organization)],
                   page)


@router.get("/authorities", tags=["directory"], response_model=Page[AuthorityOut])
def list_authorities(principal: CurrentPrincipal, api: Services,
                     page: Paging) -> Page[AuthorityOut]:
    """The organization's CAs and trust anchors."""
    authorize(principal, Action.READ)
    own = [a for a in api.authorities.list() if a.organization == principal.organization]
    return _window([authority_out(a) for a in own], page)


@router.get("/authorities/{authority}", tags=["directory"])
def get_authority(authority: LabelPath, principal: CurrentPrincipal,
                  api: Services) -> AuthorityOut:
    """One of the organization's authorities, with its certificate chain (PEM)."""
    found = owned_authority(api, principal.organization, authority)
    authorize(principal, Action.READ, found.organization, "authority")
    return authority_out(found)


def owned_authority(api: APIServices, organization: str, label: str) -> Authority:
    """The authority if it exists and belongs to `organization`; else not found (an
    authority of another organization looks exactly like one that does not exist)."""
    try:
        authority = api.authorities.get(label)
    except NotFoundError:
        raise NotFoundError("no such authority") from None
    if authority.organization != organization:
        raise NotFoundError("no such authority")
    return authority


@router.get("/profiles", tags=["directory"], response_model=Page[ProfileOut])
def list_profiles(principal: CurrentPrincipal, api: Services, page: Paging) -> Page[ProfileOut]:
    """Certificate profiles: what certificates look like (shared by all organizations)."""
    authorize(principal, Action.READ)
    return _window([profile_out(p) for _, p in sorted(api.profiles.items())], page)


@router.get("/profiles/{profile}", tags=["directory"])
def get_profile(profile: Annotated[str, Path(max_length=63)], principal: CurrentPrincipal,
                api: Services) -> ProfileOut:
    """One certificate profile."""
    authorize(principal, Action.READ)
    if profile not in api.profiles:
        raise NotFoundError("no such profile")
    return profile_out(api.profiles[profile])
