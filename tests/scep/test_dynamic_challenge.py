"""Dynamic SCEP challenges (issue 16, the Intune-style flow): a device-management system asks
the REST API (in process) for a per-device challenge bound to the subject and SANs the
device must get, with a short expiry; the device enrolls over SCEP with it once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from iotpki.app import api_services
from iotpki.core.integration.principal import Role
from iotpki.protocols.rest.app import create_api
from iotpki.wire.scep.attributes import FailInfo, MessageType, PKIStatus
from tests.api.conftest import APIClient
from tests.scep.conftest import CA, DOMAIN, DOMAIN_SAN, Requester, Scene, csr_der


@pytest.fixture
def mdm(scep: Scene) -> Iterator[tuple[APIClient, str]]:
    """The REST API over the module server's PKI, and a registrar's API key."""
    created = scep.pki.principals.create_api_key("operatorco", Role.REGISTRAR, "mdm", "test")
    assert created.api_key is not None
    client = APIClient(create_api(api_services(scep.pki)))
    try:
        yield client, created.api_key
    finally:
        client.close()


def challenge(mdm: tuple[APIClient, str], **body: object) -> str:
    client, key = mdm
    answer = client.post("/api/v1/registrations/challenges", key, json={
        "authority": CA, "profile": "operational", **body})
    assert answer.status_code == 201, answer.text
    data = answer.json()
    assert data["expires_at"] > data["created_at"] and data["method"] == "one-time-secret"
    assert data["challenge"].startswith(data["id"] + ":")
    return str(data["challenge"])


def pkcsreq(scep: Scene, requester: Requester, password: str, subject: str) -> tuple[
        PKIStatus | None, FailInfo | None, bytes | None]:
    ra = scep.ra()
    message, _ = requester.message(MessageType.PKCS_REQ,
                                   csr_der(requester.key, subject, password, [DOMAIN_SAN]), ra)
    answer, content = requester.open(scep.post("", message)[2], ra)
    return answer.pki_status, answer.fail_info, content


def test_challenge_is_bound_single_use_and_short_lived(scep: Scene,
                                                       mdm: tuple[APIClient, str]) -> None:
    password = challenge(mdm, subject="CN=mdm-device-1", domain=DOMAIN, lifetime="1h")
    registration = scep.pki.registrations.get(password.split(":")[0])
    assert registration.expires_at - registration.created_at == timedelta(hours=1)

    requester = Requester.new()
    status, _, content = pkcsreq(scep, requester, password, "CN=something-else")
    assert status is PKIStatus.SUCCESS and content is not None
    issued = pkcs7.load_der_pkcs7_certificates(content)[0]
    # Bound: the certificate gets the challenge's subject and SANs, whatever the CSR asked.
    assert issued.subject.rfc4514_string() == "CN=mdm-device-1"
    sans = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [DOMAIN_SAN]

    again = pkcsreq(scep, Requester.new(), password, "CN=mdm-device-1")
    assert again[:2] == (PKIStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert [r["reason"] for r in scep.refusals()] == ["registration-consumed"]


def test_challenge_requests_are_checked(scep: Scene, mdm: tuple[APIClient, str]) -> None:
    client, key = mdm
    base = {"authority": CA, "profile": "operational"}
    unbound = client.post("/api/v1/registrations/challenges", key, json=base)
    assert unbound.status_code == 422
    too_long = client.post("/api/v1/registrations/challenges", key,
                           json={**base, "domain": DOMAIN, "lifetime": "2d"})
    assert too_long.status_code == 422
    nobody = client.post("/api/v1/registrations/challenges", json={**base, "domain": DOMAIN})
    assert nobody.status_code == 401
