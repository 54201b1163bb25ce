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
           key: Any = None, att_obj: bytes | None = None,
           fmt: str = "previous-stage") -> tuple[dict, dict]:
    order = client.new_order(name or sensor.name, kind="permanent-identifier")
    assert order.status_code == 201, order.text
    challenge = client.challenge(order.json(), "device-attest-01")[0]
    token = challenge["token"]
    att_obj = att_obj or sign_previous_stage(key or sensor.key, sensor.chain,
                                             client.key_authorization(token), fmt)
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
    # the registration is consumed: a second order for the identity attests afresh (no
    # authorization reuse for permanent-identifier) and is refused; nothing is issued
    again, refused = attest(client, sensor)
    assert refused["status"] == "invalid"
    assert refused["error"]["type"] == ERR + "unauthorized"
    assert "consumed" in refused["error"]["detail"] or "used" in refused["error"]["detail"]
    csr, _ = make_csr(sensor.name, [domain_uri(DOMAIN)])
    assert client.post(again["finalize"], {"csr": b64(csr)}).json()["type"] == \
        ERR + "orderNotReady"


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


def enroll(acme: ACMEWorld, client: ACMEClient, sensor: Sensor,
           fmt: str = "previous-stage") -> tuple[x509.Certificate, Any]:
    order, challenge = attest(client, sensor, fmt=fmt)
    assert challenge["status"] == "valid", challenge
    csr, key = make_csr(sensor.name, [domain_uri(DOMAIN)])
    final = client.post(order["finalize"], {"csr": b64(csr)})
    assert final.status_code == 200, final.text
    return x509.load_pem_x509_certificates(
        client.get(final.json()["certificate"]).content)[0], key


def current(certificate: x509.Certificate, key: Any, acme: ACMEWorld) -> Sensor:
    """The device as it renews: its current certificate (and issuing CA) and key."""
    chain = [certificate, *acme.pki.authorities.get("operatorco-operations").full_chain[:1]]
    return Sensor(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                  key, [c.public_bytes(Encoding.DER) for c in chain], certificate)


def test_renewal_is_attested_by_the_current_certificate(acme: ACMEWorld) -> None:
    """The registration is consumed by the first certificate; the renewal order for the same
    permanent-identifier is authorized by the current certificate (format
    `current-certificate`, the current-certificate method of EST and CMP renewal)."""
    sensor = make_sensor(acme, "sensor-acme-0010")
    client = acme.account("devices", organization="operatorco")
    first, first_key = enroll(acme, client, sensor)
    device = current(first, first_key, acme)
    second, second_key = enroll(acme, client, device, fmt="current-certificate")
    assert second.serial_number != first.serial_number
    assert second.subject == first.subject
    assert second.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == \
        first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    record = acme.pki.certificates.get("operatorco-operations", first.serial_number)
    assert record is not None and record.status.value == "good"  # it stays valid until it expires
    # only the newest of the identity renews: the replaced certificate no longer does
    _, refused = attest(client, device, fmt="current-certificate")
    assert refused["status"] == "invalid"
    assert "newest" in refused["error"]["detail"], refused
    # a previous-stage identity is not a current certificate issued here
    _, refused = attest(client, sensor, fmt="current-certificate")
    assert refused["status"] == "invalid", refused
    # nor does the current key prove a previous stage
    _, refused = attest(client, current(second, second_key, acme))
    assert refused["status"] == "invalid", refused


def test_revoked_current_certificate_cannot_renew(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-acme-0011")
    client = acme.account("devices", organization="operatorco")
    first, key = enroll(acme, client, sensor)
    acme.pki.revocation.revoke("operatorco-operations", first.serial_number,
                               x509.ReasonFlags.superseded, "operatorco:ra")
    since = acme.audit_head()
    _, refused = attest(client, current(first, key, acme), fmt="current-certificate")
    assert refused["status"] == "invalid"
    assert refused["error"]["type"] == ERR + "unauthorized"
    assert [r.details["reason"] for r in acme.audit_since(since, "acme.challenge")] == [
        "revoked"]
