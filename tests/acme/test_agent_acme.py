"""The device agent's ACME client (`iotpki.agent.acme_client`) against the ACME server in
process: device-attest-01 with the previous-stage key, the issued chain, the suggested
renewal window (RFC 9773), and a refusal as the agent sees it."""

from __future__ import annotations

import base64
import ssl
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from iotpki.agent.acme_client import ACMEDeviceClient
from iotpki.agent.credentials import build_csr
from iotpki.agent.errors import RefusedError
from iotpki.agent.transport import Answer
from iotpki.wire.keys import generate_private_key
from tests.acme.conftest import BASE, ACMEWorld, InProcess
from tests.acme.test_device_attest import DOMAIN, make_sensor
from tests.factories import domain_uri


class InProcessTransport:
    """The agent's `Transport` over the in-process ACME app."""

    def __init__(self, http: InProcess) -> None:
        self._http = http

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        answer = self._http.request(method, url, content=body, headers=headers or {})
        return Answer(answer.status_code, {k.lower(): v for k, v in answer.headers.items()},
                      answer.content)

    def close(self) -> None:
        pass


def eab(acme: ACMEWorld) -> tuple[str, bytes]:
    made = acme.pki.acme_keys.create("operatorco", "test", "devices")
    return made.key_id, base64.urlsafe_b64decode(made.hmac_key + "=" * (-len(made.hmac_key) % 4))


def device_client(acme: ACMEWorld) -> ACMEDeviceClient:
    return ACMEDeviceClient(f"{BASE}/acme/devices/directory", generate_private_key("ec-p256"),
                            transport=InProcessTransport(acme.http))


def test_agent_enrolls_by_device_attestation_and_reads_its_window(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-agent-0001")
    client = device_client(acme)
    client.register(eab(acme))
    new_key = generate_private_key("ec-p256")
    csr = build_csr(new_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sensor.name)]),
                    [domain_uri(DOMAIN)])
    chain = client.enroll_attested(sensor.name, sensor.key,
                                   [x509.load_der_x509_certificate(c) for c in sensor.chain], csr)
    leaf = chain[0]
    assert leaf.public_key().public_numbers() == new_key.public_key().public_numbers()
    start, end = client.renewal_window(leaf)
    assert leaf.not_valid_before_utc < start < end < leaf.not_valid_after_utc
    assert end - start > timedelta(0)


def test_agent_sees_a_refusal_as_refused_error(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-agent-0002", register=False)
    client = device_client(acme)
    client.register(eab(acme))
    csr = build_csr(generate_private_key("ec-p256"),
                    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sensor.name)]))
    with pytest.raises(RefusedError) as refused:
        client.enroll_attested(sensor.name, sensor.key,
                               [x509.load_der_x509_certificate(c) for c in sensor.chain], csr)
    assert refused.value.reason == "unauthorized"
    assert "registration" in refused.value.detail
