"""The core services the console calls (built by the composition root from `PKI`), and what
a screen gets for one request (`Visit`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from iotpki.core.audit.trail import AuditTrail
from iotpki.core.ca.authority_service import AuthorityService
from iotpki.core.ca.directory import CertificateDirectory
from iotpki.core.ca.profile import Profile
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.core.clock import Clock
from iotpki.core.integration.access import Action, may
from iotpki.core.integration.console_session import ConsoleSessions, SignedIn
from iotpki.core.integration.principal import Principal
from iotpki.core.integration.principal_service import PrincipalService
from iotpki.core.integration.webhook_service import WebhookService
from iotpki.core.lifecycle.device_inventory import DeviceInventory
from iotpki.core.lifecycle.device_service import DeviceService
from iotpki.core.lifecycle.fleet_overview import FleetOverview
from iotpki.core.lifecycle.posture import PostureChecks
from iotpki.core.lifecycle.transitions import LifecycleService
from iotpki.core.ra.approval import ManualApproval
from iotpki.core.ra.endpoints import Endpoints
from iotpki.core.ra.registration_service import RegistrationService
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.ocsp import OCSPResponder
from iotpki.core.revocation.service import RevocationService
from iotpki.core.supply_chain.manifests import ManifestService
from iotpki.core.supply_chain.organization_service import OrganizationService

PREFIX = "/console"


@dataclass(frozen=True)
class ConsoleServices:
    sessions: ConsoleSessions
    principals: PrincipalService
    fleet: FleetOverview
    authorities: AuthorityService
    organizations: OrganizationService
    profiles: Mapping[str, Profile]
    certificates: CertificateDirectory
    service_certificates: ServiceCertificates
    revocation: RevocationService
    devices: DeviceService
    inventory: DeviceInventory
    lifecycle: LifecycleService
    approval: ManualApproval
    ocsp: OCSPResponder
    crls: CRLPublisher
    audit: AuditTrail
    clock: Clock
    webhooks: WebhookService
    posture: PostureChecks
    registrations: RegistrationService
    endpoints: Endpoints
    manifests: ManifestService
    origins: frozenset[str] = frozenset()  # reached through a proxy too (console_origins)


@dataclass
class Visit:
    """One request of a signed-in principal: what a screen reads and renders with."""

    request: Request
    signed_in: SignedIn
    services: ConsoleServices
    render: Callable[..., Response]
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def principal(self) -> Principal:
        return self.signed_in.principal

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    def may(self, action: Action) -> bool:
        return may(self.principal, action)

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        return self.render(template, self, status, context)
