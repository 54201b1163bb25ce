"""Privilege escalation through certificate principals (issue 15 item 1), on SQLite and
PostgreSQL. An admin principal is bound to a subject of OperatorCo's CA; a registrar and a
device try to get a certificate with that subject and use it on the REST API.

The model (docs/security.md): a principal bound to a subject accepts only an `api-client`
certificate issued here, which only the operator issues; no other certificate is issued
with a subject a principal is bound to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import AuthenticationError, RefusalReason
from iotpki.core.integration.principal import Role
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.names import parse_subject
from tests.api.conftest import DOMAIN, OWN, APIClient, World
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
ADMIN = "CN=crm-admin,O=OperatorCo"


def operator_issues_api_client(pki: PKI, subject: str = ADMIN) -> x509.Certificate:
    csr, _ = make_csr(None, extra_subject=list(parse_subject(subject)))
    outcome = pki.issuance.issue(IssuanceRequest(CA, "api-client", csr, "cli", method="cli"))
    assert isinstance(outcome, Issued), outcome
    return outcome.certificate


def bind_admin(pki: PKI) -> None:
    pki.principals.create_certificate_principal(OWN, Role.ADMIN, "crm", "cli", subject=ADMIN,
                                                authority=CA)


def secret_registration(pki: PKI, subject: str | None = None) -> tuple[str, str]:
    created = pki.registrations.create(RegistrationSpec(
        OWN, CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject(subject) if subject else None, domain=DOMAIN), "registrar")
    assert created.secret is not None
    return created.registration.id, created.secret


def device_enrolls(pki: PKI, registration: str, secret: str,
                   subject: str = ADMIN) -> Issued | Rejected:
    csr, _ = make_csr(None, [domain_uri(DOMAIN)], extra_subject=list(parse_subject(subject)))
    return pki.enrollment.enroll(EnrollmentRequest(csr, "operational", registration_id=registration,
                                                   secret=secret), "one-time-secret")


def as_client_certificate(app: FastAPI, certificate: x509.Certificate) -> APIClient:
    """The app as the HTTPS server runs it: the TLS client certificate in the ASGI TLS
    extension (`https_server.tls_extension`)."""
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()

    async def with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "extensions": {"tls": {"client_cert_chain": [pem]}}}
        await app(scope, receive, send)

    return APIClient(with_tls)  # type: ignore[arg-type]


@pytest.fixture
def tls_client(api_app: FastAPI) -> Iterator[dict[str, APIClient]]:
    clients: dict[str, APIClient] = {}
    yield clients
    for client in clients.values():
        client.close()


def test_the_operators_api_client_certificate_is_the_admin(
        world: World, api_app: FastAPI, tls_client: dict[str, APIClient]) -> None:
    bind_admin(world.pki)
    certificate = operator_issues_api_client(world.pki)
    tls_client["admin"] = as_client_certificate(api_app, certificate)
    response = tls_client["admin"].get("/api/v1/organizations")
    assert response.status_code == 200, response.text


def test_route_a_registrar_cannot_register_the_admins_subject(world: World) -> None:
    """The registrar asks for a registration whose fixed subject is the admin's."""
    bind_admin(world.pki)
    registrar = world.key(OWN, Role.REGISTRAR)
    before = len(world.pki.registrations.find(OWN))
    for body in ({"authority": CA, "profile": "operational", "method": "one-time-secret",
                  "subject": ADMIN, "domain": DOMAIN},
                 {"authority": CA, "profile": "api-client", "method": "one-time-secret",
                  "subject": "CN=another-admin,O=OperatorCo"}):
        response = world.client.post("/api/v1/registrations", registrar, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "urn:iotpki:problem:invalid-request"
    assert len(world.pki.registrations.find(OWN)) == before


def test_route_a_a_registration_made_before_the_binding_yields_no_admin(
        world: World, api_app: FastAPI, tls_client: dict[str, APIClient]) -> None:
    """The registrar registers the subject first; the admin binding comes later."""
    early = secret_registration(world.pki, ADMIN)
    enrolled_early = secret_registration(world.pki, ADMIN)
    device = device_enrolls(world.pki, *enrolled_early)
    assert isinstance(device, Issued)  # no principal yet: an ordinary operational identity
    bind_admin(world.pki)
    late = device_enrolls(world.pki, *early)
    assert isinstance(late, Rejected) and late.reason is RefusalReason.SUBJECT_NOT_ALLOWED
    # The certificate issued before the binding has the subject, not the admin's rights.
    with pytest.raises(AuthenticationError):
        world.pki.principals.authenticate_certificate(device.certificate)
    tls_client["device"] = as_client_certificate(api_app, device.certificate)
    response = tls_client["device"].get("/api/v1/organizations")
    assert response.status_code == 401, response.text


def test_route_b_device_csr_with_the_admins_subject(world: World) -> None:
    """A registration without a fixed subject: the device's CSR names the admin."""
    bind_admin(world.pki)
    outcome = device_enrolls(world.pki, *secret_registration(world.pki))
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.SUBJECT_NOT_ALLOWED
    refusal = world.pki.audit.entries(limit=None)[-1].record
    assert (refusal.action, refusal.outcome) == ("certificate.issue", "refused")


@pytest.mark.parametrize("method", ["one-time-secret", "manual-approval", "previous-stage",
                                    "current-certificate", "internal", "direct"])
def test_api_client_certificates_come_only_from_the_operator(world: World, method: str) -> None:
    csr, _ = make_csr("crm-2")
    outcome = world.pki.issuance.issue(IssuanceRequest(CA, "api-client", csr, "x", method=method))
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.METHOD_NOT_ALLOWED


def test_subject_binding_ignores_other_profiles_and_other_cas(world: World) -> None:
    """Even the operator's own service certificate with the admin's subject is not the admin."""
    bind_admin(world.pki)
    csr, _ = make_csr(None, [x509.DNSName(f"crm.{DOMAIN}")],
                      extra_subject=list(parse_subject(ADMIN)))
    service = world.pki.issuance.issue(IssuanceRequest(CA, "service", csr, "cli", method="cli"))
    assert isinstance(service, Rejected) and service.reason is RefusalReason.SUBJECT_NOT_ALLOWED
    other = world.pki.issuance.issue(IssuanceRequest(
        "deviceco-devices", "device", make_csr(None, extra_subject=list(parse_subject(ADMIN)))[0],
        "t"))
    assert isinstance(other, Issued)  # another CA: the subject is not reserved there ...
    with pytest.raises(AuthenticationError):  # ... and it is not the admin either
        world.pki.principals.authenticate_certificate(other.certificate)
