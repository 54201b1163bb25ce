"""Hostile input against both listeners in process (httpx over ASGITransport, no socket):
the HTTPS application (EST, REST) and the plain-HTTP one (OCSP, CRL, CMP), on the story's
organizations, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from iotpki.app import PKI, http_app, https_app
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.names import parse_subject
from tests.api.conftest import APIClient

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


class Client(APIClient):
    """The in-process client, with a settable client address (ASGI scope "client")."""

    def set_client(self, address: str) -> None:
        transport = self._client._transport
        assert isinstance(transport, httpx.ASGITransport)
        transport.client = (address, 40000)


@dataclass
class Listeners:
    pki: PKI
    https: Client  # EST and REST
    http: Client  # OCSP, CRL, CMP

    def secret_registration(self, subject: str = "CN=sensor-9") -> tuple[str, str]:
        created = self.pki.registrations.create(RegistrationSpec(
            "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
            subject=parse_subject(subject), domain=DOMAIN), "operatorco:crm")
        assert created.secret is not None
        return created.registration.id, created.secret

    def audit_details(self) -> list[dict[str, Any]]:
        return [dict(e.record.details) | {"actor": e.record.actor, "target": e.record.target}
                for e in self.pki.audit.entries(limit=None)]


@pytest.fixture
def listeners(demo_pki: PKI) -> Iterator[Listeners]:
    https = Client(https_app(demo_pki))  # type: ignore[arg-type]
    http = Client(http_app(demo_pki, background=False))  # type: ignore[arg-type]
    try:
        yield Listeners(demo_pki, https, http)
    finally:
        https.close()
        http.close()
