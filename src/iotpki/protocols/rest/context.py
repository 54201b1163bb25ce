"""What every operation needs: the core services, the authenticated principal, and the
idempotent execution of creating requests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography import x509
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.responses import Response

from iotpki.core.audit.trail import AuditTrail
from iotpki.core.ca.authority_service import AuthorityService
from iotpki.core.ca.directory import CertificateDirectory
from iotpki.core.ca.profile import Profile
from iotpki.core.errors import AuthenticationError
from iotpki.core.integration.principal import Principal
from iotpki.core.integration.principal_service import PrincipalService
from iotpki.core.lifecycle.device_service import DeviceService
from iotpki.core.lifecycle.transitions import LifecycleService
from iotpki.core.ra.acme_keys import EABKeys
from iotpki.core.ra.registration_service import RegistrationService
from iotpki.core.revocation.service import RevocationService
from iotpki.core.supply_chain.manifests import ManifestService
from iotpki.core.supply_chain.organization_service import OrganizationService
from iotpki.protocols.rest.body_guard import AUTHENTICATED
from iotpki.protocols.rest.idempotency import MAX_KEY_LENGTH, IdempotencyKeys
from iotpki.protocols.tls_client import client_certificate


@dataclass(frozen=True)
class APIServices:
    """The core services the API calls (built by the composition root from `PKI`)."""

    principals: PrincipalService
    idempotency: IdempotencyKeys
    authorities: AuthorityService
    organizations: OrganizationService
    profiles: Mapping[str, Profile]
    registrations: RegistrationService
    manifests: ManifestService
    certificates: CertificateDirectory
    revocation: RevocationService
    audit: AuditTrail
    devices: DeviceService
    lifecycle: LifecycleService
    acme_keys: EABKeys


def services(request: Request) -> APIServices:
    api = request.app.state.services
    assert isinstance(api, APIServices)
    return api


_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                     description="An API key `iotpki_<id>_<secret>` (`iotpki principal "
                                 "create`), as `Authorization: Bearer <key>`")


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api: Annotated[APIServices, Depends(services)],
) -> Principal:
    """An API key if one is presented, else the TLS client certificate (already checked
    by the body guard for requests with a body)."""
    known = request.scope.get(AUTHENTICATED)
    if isinstance(known, Principal):
        return known
    return authenticate(api, request.headers.get("authorization"), client_certificate(request.scope))


def authenticate(api: APIServices, authorization: str | None,
                 certificate: x509.Certificate | None) -> Principal:
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationError("use Authorization: Bearer <API key>")
        return api.principals.authenticate_key(key.strip())
    if certificate is not None:
        return api.principals.authenticate_certificate(certificate)
    raise AuthenticationError("no credentials: send an API key (Authorization: Bearer) or a "
                              "client certificate")


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Services = Annotated[APIServices, Depends(services)]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH,
    description="Repeat a creating request safely: the same key with the same body returns "
                "the first response; with another body, 422")]


def request_hash(operation: str, body: BaseModel | None, **parameters: Any) -> str:
    """What identifies a request for its idempotency key: the operation, its path parameters
    and its body in canonical JSON."""
    canonical = body.model_dump_json() if body is not None else ""
    items = "&".join(f"{k}={v}" for k, v in sorted(parameters.items()))
    return hashlib.sha256(f"{operation}\n{items}\n{canonical}".encode()).hexdigest()


def run_idempotent(api: APIServices, principal: Principal, key: str | None, digest: str,
                   status: int, operation: Callable[[], BaseModel]) -> Response:
    """Run `operation` once per (principal, key); replay its stored response afterwards."""
    if key is not None:
        stored = api.idempotency.recall(principal.id, key, digest)
        if stored is not None:
            headers = {"Idempotent-Replayed": "true"}
            if stored.secrets_withheld:  # never stored in clear (protocols/rest/idempotency.py)
                headers["Idempotent-Secrets-Withheld"] = "true"
            return Response(stored.body, stored.status, media_type="application/json",
                            headers=headers)
    body = operation().model_dump_json().encode()
    if key is not None:
        first = api.idempotency.remember(principal.id, key, digest, status, body)
        status, body = first.status, first.body
    return Response(body, status, media_type="application/json")
