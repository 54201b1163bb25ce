"""The REST API in process: the FastAPI app over httpx's ASGI transport (no socket), on the
story's organizations, with one API key per (organization, role).

`world` holds objects of OperatorCo (the organization whose isolation is tested): a good
operational certificate, an open registration, a manifest DeviceCo signed for it, and a
device (chip → device → operational certificate) it owns."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.from_thread
import httpx
import pytest
from fastapi import FastAPI

from iotpki.app import PKI, api_services
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.integration.principal import Role
from iotpki.core.outcomes import Issued
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.protocols.rest.app import create_api
from tests.factories import domain_uri, make_csr
from tests.lifecycle.fleet import operational_device

OWN, OTHER = "operatorco", "deviceco"
DOMAIN = "building-42.operator.example"


class APIClient:
    """A synchronous face on `httpx.AsyncClient(transport=ASGITransport(app))`."""

    def __init__(self, app: FastAPI) -> None:
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://iotpki.test")

    def request(self, method: str, url: str, key: str | None = None,
                **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self._portal.call(partial(self._client.request, method, url, headers=headers,
                                         **kwargs))

    def get(self, url: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, key, **kwargs)

    def post(self, url: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, key, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)


@dataclass
class World:
    pki: PKI
    client: APIClient
    keys: dict[tuple[str, Role], str]  # (organization, role) → API key
    certificate: CertificateRecord  # OperatorCo's, good
    registration: str  # OperatorCo's, open
    manifest: str  # base64 CMS: DeviceCo → OperatorCo
    device: str  # OperatorCo's, active, with a chip, device and operational identity

    def key(self, organization: str, role: Role) -> str:
        return self.keys[(organization, role)]


def issue_operational(pki: PKI, name: str = "sensor-1") -> CertificateRecord:
    csr, _ = make_csr(name, sans=[domain_uri(DOMAIN)])
    outcome = pki.issuance.issue(IssuanceRequest("operatorco-operations", "operational", csr,
                                                 "test"))
    assert isinstance(outcome, Issued)
    return outcome.record


def _device_manifest(pki: PKI) -> str:
    csr, _ = make_csr("sensor-7")
    outcome = pki.issuance.issue(IssuanceRequest("deviceco-devices", "device", csr, "test"))
    assert isinstance(outcome, Issued)
    signed = pki.manifests.export("deviceco", "operatorco", [outcome.record], "test")
    return base64.b64encode(signed).decode()


@pytest.fixture
def api_app(demo_pki: PKI) -> FastAPI:
    return create_api(api_services(demo_pki))


@pytest.fixture
def client(api_app: FastAPI) -> Iterator[APIClient]:
    client = APIClient(api_app)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def world(demo_pki: PKI, client: APIClient) -> World:
    return build_world(demo_pki, client)


def build_world(demo_pki: PKI, client: APIClient) -> World:
    keys = {}
    for organization in (OWN, OTHER):
        for role in Role:
            created = demo_pki.principals.create_api_key(organization, role, f"{role}-key", "test")
            assert created.api_key is not None
            keys[(organization, role)] = created.api_key
    registration = demo_pki.registrations.create(RegistrationSpec(
        OWN, "operatorco-operations", "operational", RegistrationMethod.ONE_TIME_SECRET,
        domain=DOMAIN), "test").registration.id
    return World(demo_pki, client, keys, issue_operational(demo_pki), registration,
                 _device_manifest(demo_pki), operational_device(demo_pki).device_id)
