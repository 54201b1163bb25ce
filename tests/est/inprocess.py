"""The EST adapter in process: `protocols.est.routes` over httpx's ASGI transport (no
socket), on the story's PKI, with endpoints of the test's choosing and a TLS client
certificate put into the ASGI TLS extension as our HTTPS listener does."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import partial
from typing import Any

import anyio.from_thread
import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.outcomes import Issued
from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
from iotpki.core.ra.endpoints import Endpoint, Endpoints
from iotpki.core.ra.key_delivery import KeyDelivery
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.protocols.est.routes import routes
from iotpki.wire.names import parse_subject
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


class InProcessEST:
    """A synchronous EST client on the in-process adapter; `tls` is the client certificate
    the next requests present (None: no client certificate)."""

    def __init__(self, pki: PKI, endpoints: Mapping[str, tuple[str, ...]],
                 key_delivery: KeyDelivery | None = None,
                 tls_unique: bytes | None = None) -> None:
        self.pki = pki
        self.tls: x509.Certificate | None = None
        self.tls_unique = tls_unique
        self.generated_key_type = ""  # what the test's key delivery makes, when it chose
        declared = {("est", label): Endpoint("est", label, CA, "operational", methods)
                    for label, methods in endpoints.items()}
        self.enrollment = EndpointEnrollment(
            pki.database.unit_of_work, Endpoints(declared), pki.enrollment, pki.profiles,
            pki.clock, key_delivery or pki.key_delivery)
        self._app = Starlette(routes=routes(self.enrollment))
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self._asgi),
                                         base_url="https://est.test")

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            chain = [self.tls.public_bytes(Encoding.PEM).decode()] if self.tls else []
            scope = {**scope, "extensions": {"tls": {
                "client_cert_chain": chain, "tls_version": "TLSv1.2", "server_cert": None,
                "tls_unique": self.tls_unique}}}
        await self._app(scope, receive, send)

    def request(self, method: str, operation: str, label: str = "", body: bytes | None = None,
                auth: tuple[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        path = f"/.well-known/est/{label}/{operation}" if label else \
            f"/.well-known/est/{operation}"
        headers = dict(kwargs.pop("headers", {}))
        if body is not None:
            headers.setdefault("Content-Type", "application/pkcs10")
        return self._portal.call(partial(self._client.request, method, path, content=body,
                                         headers=headers, auth=auth, **kwargs))

    def post(self, operation: str, csr_der: bytes, label: str = "",
             auth: tuple[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", operation, label, base64.encodebytes(csr_der), auth,
                            **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)

    # -- data through the core -----------------------------------------------------------------

    def secret_registration(self, subject: str = "CN=sensor-9") -> tuple[str, str]:
        created = self.pki.registrations.create(RegistrationSpec(
            "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
            subject=parse_subject(subject), domain=DOMAIN), "operatorco:crm")
        assert created.secret is not None
        return created.registration.id, created.secret

    def operational(self, name: str, key_type: str = "ec-p256", key: Any = None
                    ) -> tuple[x509.Certificate, Any]:
        """A good operational certificate issued here, and its key."""
        csr, key = make_csr(name, sans=[domain_uri(DOMAIN)], key_type=key_type, key=key)
        outcome = self.pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
        assert isinstance(outcome, Issued), outcome
        return outcome.certificate, key

    def issued_count(self) -> int:
        """Operational certificates of the CA (its CMP protection certificate aside)."""
        return len(self.pki.certificates.find(CertificateQuery(
            authority=CA, profile="operational", limit=None)))
