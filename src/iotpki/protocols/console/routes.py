"""The console's route table: one line per screen action. A screen is a module of
`screens/` with its template in `templates/`; its views take the `Visit` and the path's
parameters and return a response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from iotpki.protocols.console.screens import (
    approvals,
    audit,
    authorities,
    certificate,
    devices,
    enrollment,
    integrations,
    overview,
    posture,
    revocation,
)


@dataclass(frozen=True)
class ScreenRoute:
    method: str
    path: str
    view: Callable[..., Response]


def _get(path: str, view: Callable[..., Response]) -> ScreenRoute:
    return ScreenRoute("GET", path, view)


def _post(path: str, view: Callable[..., Any]) -> ScreenRoute:
    return ScreenRoute("POST", path, view)

UPLOAD_PATH = "/enrollment/upload"  # the one POST whose body may be multipart (a CSV file)

SCREENS: tuple[ScreenRoute, ...] = (
    _get("/", overview.show),
    _get("/devices", devices.index),
    _get("/devices/{device_id}", devices.show),
    _post("/devices/{device_id}/events", devices.report_event),
    _get("/certificates/{authority}/{serial}", certificate.show),
    _get("/certificates/{authority}/{serial}/download/{form}", certificate.download),
    _post("/certificates/{authority}/{serial}/status", certificate.change_status),
    _get("/authorities", authorities.show),
    _get("/enrollment", enrollment.show),
    _post("/enrollment/registrations", enrollment.create_registration),
    _post(UPLOAD_PATH, enrollment.upload),
    _get("/approvals", approvals.show),
    _post("/approvals/{request_id}", approvals.decide),
    _get("/audit", audit.show),
    _get("/audit/verify", audit.verify),
    _get("/audit/export", audit.export),
    _get("/revocation", revocation.show),
    _get("/revocation/lifecycle", revocation.find_device),
    _get("/revocation/devices/{device_id}/{event}", revocation.confirm_event),
    _post("/revocation/devices/{device_id}/{event}", revocation.report_event),
    _get("/revocation/bulk", revocation.bulk_preview),
    _post("/revocation/bulk", revocation.bulk_revoke),
    _get("/posture", posture.show),
    _get("/integrations", integrations.show),
    _post("/integrations/deliveries/{delivery_id}/retry", integrations.retry_delivery),
    _post("/integrations/principals/{principal_id}/revoke", integrations.revoke_principal),
)
