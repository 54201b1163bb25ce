"""Registrations (the RA): create one or many, list, show, cancel — within the principal's
organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from iotpki.core.ca.profile import parse_duration
from iotpki.core.errors import NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.integration.principal import Principal
from iotpki.core.ra.registration import (
    MAY_REVOKE,
    Registration,
    RegistrationMethod,
    RegistrationStatus,
)
from iotpki.core.ra.registration_service import CreatedRegistration, RegistrationSpec
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
    ChallengeCreate,
    ChallengeCreated,
    RegistrationBulkCreate,
    RegistrationCreate,
    RegistrationCreated,
    RegistrationOut,
    RegistrationsCreated,
    registration_out,
)
from iotpki.protocols.rest.pagination import Page, PageRequest, created_page, page_request
from iotpki.protocols.rest.problems import COMMON_PROBLEMS, WRITE_PROBLEMS
from iotpki.wire.names import parse_san, parse_subject

router = APIRouter(tags=["registrations"])
RegistrationId = Annotated[str, Path(min_length=1, max_length=36)]


def _spec(api: APIServices, organization: str, body: RegistrationCreate,
          checked: set[str] | None = None) -> RegistrationSpec:
    """The core's spec; the authority must be the organization's (checked once per batch)."""
    if checked is None or body.authority not in checked:
        owned_authority(api, organization, body.authority)
        if checked is not None:
            checked.add(body.authority)
    return RegistrationSpec(
        organization=organization, authority=body.authority, profile=body.profile,
        method=body.method, subject=parse_subject(body.subject) if body.subject else None,
        sans=tuple(parse_san(s) for s in body.sans) if body.sans else None, domain=body.domain,
        identity_fingerprint=body.identity_fingerprint, identity_issuer=body.identity_issuer,
        identity_serial=body.identity_serial, lifetime=parse_duration(body.lifetime),
        component_id=body.component_id, reference=body.reference, uses=body.uses,
        attributes={MAY_REVOKE: True} if body.may_revoke else {})


def _created(c: CreatedRegistration) -> RegistrationCreated:
    return RegistrationCreated(**registration_out(c.registration), secret=c.secret)


@router.post("/registrations", status_code=201, response_model=RegistrationCreated,
             responses=WRITE_PROBLEMS)
def create_registration(body: RegistrationCreate, principal: CurrentPrincipal, api: Services,
                        key: IdempotencyKey = None) -> Response:
    """Authorize one next identity for a device of the principal's organization."""
    authorize(principal, Action.REGISTER)
    return run_idempotent(
        api, principal, key, request_hash("create_registration", body), 201,
        lambda: _created(api.registrations.create(_spec(api, principal.organization, body),
                                                  principal.actor)))


@router.post("/registrations/challenges", status_code=201, response_model=ChallengeCreated,
             responses=WRITE_PROBLEMS)
def create_challenge(body: ChallengeCreate, principal: CurrentPrincipal, api: Services,
                     key: IdempotencyKey = None) -> Response:
    """A dynamic SCEP challenge (RFC 8894 §2.3, docs/scep.md): a single-use one-time-secret
    registration for one device, bound to the subject and SANs its certificate gets, expiring
    within 24h. The device sends `challenge` as its challengePassword."""
    authorize(principal, Action.REGISTER)
    owned_authority(api, principal.organization, body.authority)
    spec = RegistrationSpec(
        organization=principal.organization, authority=body.authority, profile=body.profile,
        method=RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject(body.subject) if body.subject else None,
        sans=tuple(parse_san(s) for s in body.sans) if body.sans else None, domain=body.domain,
        lifetime=parse_duration(body.lifetime))

    def create() -> ChallengeCreated:
        created = api.registrations.create(spec, principal.actor)
        return ChallengeCreated(**registration_out(created.registration),
                                challenge=f"{created.registration.id}:{created.secret}")

    return run_idempotent(api, principal, key, request_hash("create_challenge", body), 201,
                          create)


@router.post("/registrations/bulk", status_code=201, response_model=RegistrationsCreated,
             responses=WRITE_PROBLEMS)
def create_registrations(body: RegistrationBulkCreate, principal: CurrentPrincipal,
                         api: Services, key: IdempotencyKey = None) -> Response:
    """Up to 1,000 registrations in one transaction: all or none."""
    authorize(principal, Action.REGISTER)
    checked: set[str] = set()
    specs = [_spec(api, principal.organization, r, checked) for r in body.registrations]

    def create() -> RegistrationsCreated:
        created = api.registrations.create_many(specs, principal.actor)
        return RegistrationsCreated(items=[_created(c) for c in created])

    return run_idempotent(api, principal, key, request_hash("create_registrations", body), 201,
                          create)


@router.get("/registrations", response_model=Page[RegistrationOut], responses=COMMON_PROBLEMS)
def list_registrations(
    principal: CurrentPrincipal, api: Services,
    page: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[RegistrationStatus | None, Query()] = None,
) -> Page[RegistrationOut]:
    """The organization's registrations, oldest first, optionally by status."""
    authorize(principal, Action.READ)
    found = api.registrations.find(principal.organization, status, page.limit + 1,
                                   after=page.key)
    return created_page(found, page, lambda r: (r.created_at, r.id),
                        lambda r: RegistrationOut(**registration_out(r)))


def _owned(api: APIServices, principal: Principal, registration_id: str) -> Registration:
    try:
        registration = api.registrations.get(registration_id)
    except NotFoundError:
        raise NotFoundError("no such registration") from None
    if registration.organization != principal.organization:
        raise NotFoundError("no such registration")
    return registration


@router.get("/registrations/{registration_id}", responses=COMMON_PROBLEMS)
def get_registration(registration_id: RegistrationId, principal: CurrentPrincipal,
                     api: Services) -> RegistrationOut:
    """One registration of the organization (never its secret)."""
    registration = _owned(api, principal, registration_id)
    authorize(principal, Action.READ, registration.organization, "registration")
    return RegistrationOut(**registration_out(registration))


@router.post("/registrations/{registration_id}/unlock", responses=WRITE_PROBLEMS)
def unlock_registration(registration_id: RegistrationId, principal: CurrentPrincipal,
                        api: Services) -> RegistrationOut:
    """A registration locked after too many wrong secrets can be used again; its count of
    wrong secrets starts over. Audited."""
    registration = _owned(api, principal, registration_id)
    authorize(principal, Action.REGISTER, registration.organization, "registration")
    return RegistrationOut(**registration_out(api.registrations.unlock(registration_id,
                                                                       principal.actor)))


@router.post("/registrations/{registration_id}/cancel", responses=WRITE_PROBLEMS)
def cancel_registration(registration_id: RegistrationId, principal: CurrentPrincipal,
                        api: Services) -> RegistrationOut:
    """An open registration is cancelled; a consumed or cancelled one is a conflict (409)."""
    registration = _owned(api, principal, registration_id)
    authorize(principal, Action.REGISTER, registration.organization, "registration")
    return RegistrationOut(**registration_out(api.registrations.cancel(registration_id,
                                                                       principal.actor)))
