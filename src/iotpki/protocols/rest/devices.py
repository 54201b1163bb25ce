"""Devices the principal's organization owns now: list with filters, detail with the full
identity history, and lifecycle events (lost, found, stolen, owner change, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from iotpki.core.integration.access import Action, authorize
from iotpki.core.lifecycle.device import Device, DeviceIdentity, DeviceState
from iotpki.core.lifecycle.transitions import LifecycleEvent, LifecycleOutcome
from iotpki.protocols.rest.context import (
    CurrentPrincipal,
    IdempotencyKey,
    Services,
    request_hash,
    run_idempotent,
)
from iotpki.protocols.rest.models import (
    LABEL,
    CertificateOut,
    RegistrationCreated,
    certificate_out,
    registration_out,
)
from iotpki.protocols.rest.pagination import Page, PageRequest, created_page, page_request
from iotpki.protocols.rest.problems import COMMON_PROBLEMS, WRITE_PROBLEMS

router = APIRouter(tags=["devices"])
DeviceId = Annotated[str, Path(min_length=1, max_length=36)]


class DeviceOut(BaseModel):
    id: str
    name: str
    organization: str = Field(description="Who built (recorded) it")
    owner: str = Field(description="The organization that owns it now")
    state: DeviceState
    state_changed_at: datetime | None
    created_at: datetime
    components: list[str] = Field(description="SHA-256 fingerprints of its components")


class IdentityOut(BaseModel):
    fingerprint: str
    stage: str = Field(description="component, device, operational, ...")
    linked_at: datetime
    status: str = Field(description="good, revoked, on-hold; unknown for a supplier's "
                                    "component not issued here")
    certificate: CertificateOut | None


class DeviceDetail(DeviceOut):
    history: list[IdentityOut] = Field(description="Components first, then every identity "
                                                   "issued for the device in issue order")


class EventDetails(BaseModel):
    """What owner_change and context_change need; other fields are kept in the audit entry."""

    model_config = ConfigDict(extra="allow")
    new_owner: str | None = Field(default=None, pattern=LABEL,
                                  description="owner_change: the organization taking over")
    authority: str | None = Field(default=None, pattern=LABEL)
    profile: str | None = Field(default=None, max_length=63)
    subject: str | None = Field(default=None, max_length=1024)
    sans: list[Annotated[str, Field(max_length=1024)]] | None = Field(default=None,
                                                                       max_length=64)
    domain: str | None = Field(default=None, max_length=253)
    lifetime_days: int | None = Field(default=None, ge=1, le=3650)


class EventReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: LifecycleEvent
    details: EventDetails = Field(default_factory=EventDetails)


class EventOutcome(BaseModel):
    device: DeviceOut
    event: LifecycleEvent
    previous_state: DeviceState
    previous_owner: str
    certificates: list[CertificateOut] = Field(description="Certificates the event acted on")
    registration: RegistrationCreated | None = Field(
        description="Opened for the device's next identity (owner or context change)")
    cancelled: list[str] = Field(description="The previous owner's registrations, cancelled")


def device_out(d: Device) -> DeviceOut:
    return DeviceOut(id=d.id, name=d.name, organization=d.organization, owner=d.current_owner,
                     state=d.state, state_changed_at=d.state_changed_at,
                     created_at=d.created_at, components=list(d.components))


def identity_out(i: DeviceIdentity) -> IdentityOut:
    return IdentityOut(fingerprint=i.fingerprint, stage=i.stage, linked_at=i.linked_at,
                       status=i.status, certificate=CertificateOut(**certificate_out(
                           i.certificate)) if i.certificate is not None else None)


def outcome_out(o: LifecycleOutcome) -> EventOutcome:
    created = o.registration
    return EventOutcome(
        device=device_out(o.device), event=o.event, previous_state=o.previous_state,
        previous_owner=o.previous_owner,
        certificates=[CertificateOut(**certificate_out(r)) for r in o.certificates],
        registration=RegistrationCreated(**registration_out(created.registration),
                                         secret=created.secret) if created else None,
        cancelled=list(o.cancelled))


@router.get("/devices", response_model=Page[DeviceOut], responses=COMMON_PROBLEMS)
def list_devices(principal: CurrentPrincipal, api: Services,
                 page: Annotated[PageRequest, Depends(page_request)],
                 state: Annotated[DeviceState | None, Query()] = None) -> Page[DeviceOut]:
    """Devices the organization owns now, oldest first, optionally in one state."""
    authorize(principal, Action.READ)
    found = api.devices.find(principal.organization, state, page.limit + 1, after=page.key)
    return created_page(found, page, lambda d: (d.created_at, d.id), device_out)


@router.get("/devices/{device_id}", responses=COMMON_PROBLEMS)
def get_device(device_id: DeviceId, principal: CurrentPrincipal,
               api: Services) -> DeviceDetail:
    """One device with its full identity history (each identity with its status)."""
    authorize(principal, Action.READ)
    device = api.devices.get(device_id, principal.organization)
    history = api.devices.history(device_id, principal.organization)
    return DeviceDetail(**device_out(device).model_dump(),
                        history=[identity_out(i) for i in history])


@router.post("/devices/{device_id}/events", response_model=EventOutcome,
             responses=WRITE_PROBLEMS)
def report_event(device_id: DeviceId, body: EventReport, principal: CurrentPrincipal,
                 api: Services, key: IdempotencyKey = None) -> Response:
    """Report a lifecycle event: the device changes state and its certificates are held,
    released or revoked as the transition says (docs/lifecycle.md), in one transaction. An
    event the device's state does not allow is a 409."""
    authorize(principal, Action.REPORT_EVENT)
    details: dict[str, Any] = body.details.model_dump(exclude_none=True)

    def report() -> EventOutcome:
        return outcome_out(api.lifecycle.report(device_id, body.event, principal.actor, details,
                                                organization=principal.organization))

    return run_idempotent(api, principal, key,
                          request_hash("report_event", body, device=device_id), 200, report)
