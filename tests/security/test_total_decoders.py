"""Issue 15 item 5: input that used to raise outside `ValueError` (HTTP 500, systemFailure)
gets the protocol's own error, with no traceback in the log, and nothing is issued.

Each test sends the hostile message through the real application (in process)."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from iotpki.core.integration.principal import Role
from iotpki.wire.cmp.crmf import decode_crmf_request
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.csr import decode_csr
from iotpki.wire.der import tlv
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject
from iotpki.wire.ocsp import decode_ocsp_request
from tests.api.conftest import APIClient
from tests.security.conftest import CA, Listeners
from tests.supply_chain.story import make_chip

P256_OID = bytes.fromhex("06082a8648ce3d030107")
UNKNOWN_CURVE_OID = bytes.fromhex("06082a8648ce3d030163")  # 1.2.840.10045.3.1.99


def csr(common_name: bytes = b"AAAA") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    built = (x509.CertificateSigningRequestBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AAAA")]))
             .sign(key, hashes.SHA256()))
    return built.public_bytes(serialization.Encoding.DER).replace(b"AAAA", common_name)


def csr_version_5() -> bytes:
    der = bytearray(csr())
    at = der.find(b"\x02\x01\x00")  # CertificationRequestInfo.version, v1 = 0
    der[at + 2] = 5
    return bytes(der)


def certificate_version_5(certificate: x509.Certificate) -> bytes:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x05", 1)  # [0] version v3


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def est_post(client: APIClient, operation: str, body: bytes, user: str,
             secret: str) -> tuple[int, bytes]:
    answer = client.post(f"/.well-known/est/{operation}", content=base64.b64encode(body),
                         auth=(user, secret), headers={"Content-Type": "application/pkcs10"})
    return answer.status_code, answer.content


@pytest.mark.parametrize("operation", ["simpleenroll", "simplereenroll", "serverkeygen"])
def test_est_csr_version_not_v1_is_400_on_every_route(
        listeners: Listeners, operation: str, caplog: pytest.LogCaptureFixture) -> None:
    """RFC 2986 §4.1: version is v1 (0); anything else is a malformed request (RFC 7030
    §4.2.3: a 4xx with a text explanation), not a server fault."""
    user, secret = listeners.secret_registration()
    with caplog.at_level(logging.INFO):
        status, body = est_post(listeners.https, operation, csr_version_5(), user, secret)
    assert status == 400 and b"PKCS#10" in body and b"InvalidVersion" in body
    no_traceback(caplog)
    assert any(d.get("reason") == "malformed-request" for d in listeners.audit_details())


def test_est_serverkeygen_with_unparsable_subject_is_400(
        listeners: Listeners, caplog: pytest.LogCaptureFixture) -> None:
    """RFC 7030 §4.4.1: the CSR of serverkeygen names the subject; a subject that does not
    parse (invalid UTF-8 in a UTF8String) is refused as malformed."""
    user, secret = listeners.secret_registration()
    for operation in ("serverkeygen", "simpleenroll"):
        with caplog.at_level(logging.INFO):
            status, body = est_post(listeners.https, operation, csr(b"\xff\xfe\xfd\xfc"),
                                    user, secret)
        assert status == 400, body
        no_traceback(caplog)
    assert listeners.pki.registrations.get(user).consumed_at is None


def test_cmp_template_key_on_unknown_curve_is_a_decode_error() -> None:
    """RFC 4211 §5: the template's SubjectPublicKeyInfo names a curve nobody knows."""
    message = encode_cert_req_msg(generate_private_key("ec-p256"), parse_subject("CN=x"))
    assert P256_OID in message
    with pytest.raises(DecodeError, match="UnsupportedAlgorithm"):
        decode_crmf_request(message.replace(P256_OID, UNKNOWN_CURVE_OID))


def test_cmp_extra_certs_with_invalid_version_is_a_decode_error(listeners: Listeners) -> None:
    """RFC 9810 §5.1: extraCerts are certificates; one with version 5 is malformed input."""
    chip = make_chip(listeners.pki, 3)
    request = encode_cert_req_msg(generate_private_key("ec-p256"), parse_subject("CN=s"))
    der = encode_signed_request("ir", request, chip.key, chip.chain, datetime.now(UTC))
    good = chip.chain[0].public_bytes(serialization.Encoding.DER)
    hostile = der.replace(good, certificate_version_5(chip.chain[0]))
    assert hostile != der
    with pytest.raises(DecodeError, match="extraCerts"):
        decode_pki_message(hostile)
    answer = listeners.http.post("/.well-known/cmp/p/devices", content=hostile,
                                 headers={"Content-Type": "application/pkixcmp"})
    assert answer.status_code in (200, 400) and answer.status_code < 500


def _ocsp_request(*serials: int) -> bytes:
    """An OCSP request (RFC 6960 §4.1.1) built by hand: cryptography refuses to build a
    CertID with a negative serial, which is exactly what an attacker sends. Two or more
    serials take the requestList path (pyasn1)."""
    requests = b"".join(tlv(0x30, tlv(0x30, tlv(0x30, bytes.fromhex("06052b0e03021a0500"))
                                       + tlv(0x04, b"\x00" * 20) + tlv(0x04, b"\x00" * 20)
                                       + tlv(0x02, serial.to_bytes(9, "big", signed=True))))
                        for serial in serials)
    return tlv(0x30, tlv(0x30, tlv(0x30, requests)))


@pytest.mark.parametrize("serials", [(-5,), (7, -1), (-(1 << 70), 3)])
def test_ocsp_cert_id_with_negative_serial_is_malformed_request(
        listeners: Listeners, serials: tuple[int, ...],
        caplog: pytest.LogCaptureFixture) -> None:
    """RFC 5280 §4.1.2.2: serials are positive; RFC 6960 §2.3: malformedRequest."""
    with pytest.raises(DecodeError, match=r"malformed|positive"):
        decode_ocsp_request(_ocsp_request(*serials))
    der = _ocsp_request(*serials)
    for path, kwargs in ((f"/ocsp/{CA}", {"content": der}),
                         (f"/ocsp/{CA}/{base64.b64encode(der).decode()}", {})):
        with caplog.at_level(logging.INFO):
            answer = (listeners.http.post(path, headers={
                "Content-Type": "application/ocsp-request"}, **kwargs) if kwargs
                else listeners.http.get(path))
        assert answer.status_code == 200
        status = ocsp.load_der_ocsp_response(answer.content).response_status
        assert status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        no_traceback(caplog)


@pytest.mark.parametrize("position", [1 << 63, 10 ** 30])
def test_rest_cursor_beyond_64_bits_is_a_problem_not_a_500(
        listeners: Listeners, position: int, caplog: pytest.LogCaptureFixture) -> None:
    created = listeners.pki.principals.create_api_key("operatorco", Role.ADMIN, "k", "test")
    cursor = base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")
    for path in ("/api/v1/audit", "/api/v1/certificates", "/api/v1/registrations"):
        with caplog.at_level(logging.INFO):
            answer = listeners.https.get(f"{path}?cursor={cursor}", created.api_key)
        assert answer.status_code in (400, 422), answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        no_traceback(caplog)


def test_decode_csr_parses_lazy_fields_inside_the_decoder() -> None:
    with pytest.raises(DecodeError, match="InvalidVersion"):
        decode_csr(csr_version_5())
    with pytest.raises(DecodeError):
        decode_csr(csr(b"\xff\xfe\xfd\xfc"))


def test_manifest_signer_key_on_unknown_curve_is_a_decode_error(listeners: Listeners) -> None:
    """Found by the manifest fuzz run: a signer certificate whose key names an unknown curve
    raised UnsupportedAlgorithm out of the import (HTTP 500)."""
    from iotpki.core.ca.issuance import IssuanceRequest
    from iotpki.core.outcomes import Issued
    from iotpki.wire.manifest import open_signed_manifest
    from tests.factories import make_csr
    outcome = listeners.pki.issuance.issue(IssuanceRequest(
        "deviceco-devices", "device", make_csr("sensor-u")[0], "test"))
    assert isinstance(outcome, Issued)
    signed = listeners.pki.manifests.export("deviceco", "operatorco", [outcome.record], "test")
    p384 = bytes.fromhex("06052b81040022")
    curve = P256_OID if P256_OID in signed else p384
    hostile = signed.replace(curve, curve[:-1] + b"\x63")
    assert hostile != signed
    with pytest.raises(DecodeError):
        open_signed_manifest(hostile)
    key = listeners.pki.principals.create_api_key("operatorco", Role.ADMIN, "a", "t").api_key
    answer = listeners.https.post("/api/v1/manifests/import", key, json={
        "manifest": base64.b64encode(hostile).decode(), "authority": CA,
        "profile": "operational"})
    assert answer.status_code == 422, answer.text
