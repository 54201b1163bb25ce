"""device-attest-01 (draft-ietf-acme-device-attest) for permanent-identifier orders, in
process: a DeviceCo sensor proves possession of its device certificate's key over the key
authorization (format `previous-stage`); OperatorCo's `devices` ACME endpoint issues an
operational certificate only if that identity chains to a trusted supplier, is registered
and is not revoked, the same previous-stage decision EST and CMP make."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.acme.attestation import encode_attestation_object, sign_previous_stage
from iotpki.wire.acme.jws import b64url_encode
from tests.acme.client import ACMEClient
from tests.acme.conftest import ACMEWorld
from tests.factories import domain_uri, make_csr

DOMAIN = "building-42.operator.example"
ERR = "urn:ietf:params:acme:error:"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Sensor:
    name: str
    key: Any
    chain: list[bytes]  # device certificate, DeviceCo's issuing CA
    certificate: x509.Certificate


def make_sensor(acme: ACMEWorld, name: str, register: bool = True) -> Sensor:
    csr, key = make_csr(name, extra_subject=[x509.NameAttribute(NameOID.SERIAL_NUMBER, name)])
    outcome = acme.pki.issuance.issue(IssuanceRequest("deviceco-devices", "device", csr, "t"))
    assert isinstance(outcome, Issued)
    if register:
        acme.pki.registrations.create(RegistrationSpec(
            "operatorco", "operatorco-operations", "operational",
            RegistrationMethod.PREVIOUS_STAGE, domain=DOMAIN,
            identity_fingerprint=outcome.record.fingerprint), "operatorco:ra")
    chain = [outcome.certificate.public_bytes(Encoding.DER),
             outcome.chain[0].public_bytes(Encoding.DER)]
    return Sensor(name, key, chain, outcome.certificate)


def attest(client: ACMEClient, sensor: Sensor, name: str | None = None,
           key: Any = None, att_obj: bytes | None = None) -> tuple[dict, dict]:
    order = client.new_order(name or sensor.name, kind="permanent-identifier")
    assert order.status_code == 201, order.text
    challenge = client.challenge(order.json(), "device-attest-01")[0]
    token = challenge["token"]
    att_obj = att_obj or sign_previous_stage(key or sensor.key, sensor.chain,
                                             client.key_authorization(token))
    answer = client.post(challenge["url"], {"attObj": b64url_encode(att_obj)})
    assert answer.status_code == 200, answer.text
    return order.json() | {"url": order.headers["Location"]}, answer.json()


def test_device_attest_issues_the_registered_operational_certificate(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0001")
    client = acme.account("devices", organization="operatorco")
    order, challenge = attest(client, sensor)
    assert challenge["status"] == "valid", challenge
    csr, _ = make_csr(sensor.name, [domain_uri(DOMAIN)])
    final = client.post(order["finalize"], {"csr": b64(csr)})
    assert final.status_code == 200, final.text
    pem = client.get(final.json()["certificate"]).content
    issued = x509.load_pem_x509_certificates(pem)[0]
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == sensor.name
    uris = issued.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"urn:iotpki:domain:{DOMAIN}"]
    # the registration is consumed: a second order for the identity issues nothing
    again, _ = attest(client, sensor)
    csr, _ = make_csr(sensor.name, [domain_uri(DOMAIN)])
    refused = client.post(again["finalize"], {"csr": b64(csr)})
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == ERR + "unauthorized"
    assert "consumed" in refused.json()["detail"] or "used" in refused.json()["detail"]


def test_unregistered_identity_is_refused(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0002", register=False)
    client = acme.account("devices", organization="operatorco")
    since = acme.audit_head()
    order, challenge = attest(client, sensor)
    assert challenge["status"] == "invalid"
    assert challenge["error"]["type"] == ERR + "unauthorized"
    assert [r.details["reason"] for r in acme.audit_since(since, "acme.challenge")] == [
        "not-registered"]
    assert client.get(order["url"]).json()["status"] == "invalid"


def test_revoked_identity_is_refused(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0003")
    acme.pki.revocation.revoke("deviceco-devices", sensor.certificate.serial_number,
                               x509.ReasonFlags.key_compromise, "deviceco:ra")
    client = acme.account("devices", organization="operatorco")
    _, challenge = attest(client, sensor)
    assert challenge["status"] == "invalid"
    assert challenge["error"]["type"] == ERR + "unauthorized"


def test_statement_not_signed_by_the_device_key_is_refused(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0004")
    impostor = make_sensor(acme, "sensor-acme-9999", register=False)
    client = acme.account("devices", organization="operatorco")
    _, challenge = attest(client, sensor, key=impostor.key)
    assert challenge["error"]["type"] == ERR + "badAttestationStatement"


def test_identifier_must_be_the_attested_identity(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0005")
    client = acme.account("devices", organization="operatorco")
    _, challenge = attest(client, sensor, name="sensor-acme-0006")
    assert challenge["error"]["type"] == ERR + "badAttestationStatement"


def test_malformed_or_unknown_format_is_bad_attestation(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0007")
    client = acme.account("devices", organization="operatorco")
    for att_obj in (b"\xff\x00 not cbor", encode_attestation_object("tpm", {})):
        _, challenge = attest(client, sensor, att_obj=att_obj)
        assert challenge["error"]["type"] == ERR + "badAttestationStatement"


def test_permanent_identifier_only_where_offered(acme: ACMEWorld) -> None:
    client = acme.account()
    answer = client.new_order("sensor-x", kind="permanent-identifier")
    assert answer.json()["type"] == ERR + "unsupportedIdentifier"
    devices = acme.account("devices", organization="operatorco")
    answer = devices.new_order("gw.example")
    assert answer.json()["type"] == ERR + "unsupportedIdentifier"
