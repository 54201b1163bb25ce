"""CMC behaviour in process (RFC 5272 structures and controls, RFC 5273 HTTP transport,
RFC 7030 §4.3 /fullcmc): the adapter over httpx's ASGI transport on a module's demo PKI.
Requests are built with iotpki's codec (tests/cmc/client.py); BouncyCastle's are in
tests/cmc/test_bouncycastle.py."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.cmc import pki_data as P
from iotpki.wire.cmc.request import sign_full_pki_request
from iotpki.wire.cmc.response import CMCStatus
from tests.cmc.client import (
    CA,
    csr,
    enrollment,
    new_key,
    registration,
    with_proof,
)
from tests.cmc.conftest import InProcessCMC

CMC_RESPONSE = "application/pkcs7-mime; smime-type=CMC-response"


def issued_count(cmc: InProcessCMC) -> int:
    return len(cmc.pki.certificates.find(CertificateQuery(authority=CA, profile="operational",
                                                          limit=None)))


def test_fullcmc_answer_is_base64_cmc_response(cmc: InProcessCMC) -> None:
    """RFC 7030 §4.3.2: 200, `application/pkcs7-mime; smime-type=CMC-response`, base64;
    the certificate is in the SignedData's certificates (RFC 5272 §3.3)."""
    der, key = enrollment(cmc.pki, "CN=cmc-fullcmc")
    answer = cmc.fullcmc(der)
    assert answer.status == 200
    assert answer.headers["content-type"] == CMC_RESPONSE
    assert answer.headers["content-transfer-encoding"] == "base64"
    assert answer.response.statuses[0].status is CMCStatus.SUCCESS
    certificate = answer.certificate_for(key)
    assert certificate.subject.rfc4514_string() == "CN=cmc-fullcmc"
    assert cmc.pki.certificates.get_by_fingerprint(fingerprint(certificate)) is not None


def test_fullcmc_refusal_is_4xx_with_the_cmc_response(cmc: InProcessCMC) -> None:
    """RFC 7030 §4.3.2: a rejected request gets a 4xx carrying the CMC response."""
    name, _ = registration(cmc.pki, "CN=cmc-refused")
    key = new_key()
    der = sign_full_pki_request(with_proof([P.tcr(1, csr(key, "CN=cmc-refused"))], name,
                                           "wrong secret"), key)
    answer = cmc.fullcmc(der)
    assert (answer.status, answer.fail_info) == (403, "badIdentity")
    assert answer.response.statuses[0].body_parts == (1,)


def test_fullcmc_body_that_is_not_base64_is_bad_request(cmc: InProcessCMC) -> None:
    response = cmc.post("/.well-known/est/fullcmc", b"%%% not base64 %%%")
    answer = _read(response, base64_body=True)
    assert (answer.status, answer.fail_info) == (400, "badRequest")


def test_cmc_over_http_answers_200_with_the_status_inside(cmc: InProcessCMC) -> None:
    """RFC 5273 §4: binary DER; the HTTP status is 200 whatever the CMC status."""
    before = issued_count(cmc)
    answer = cmc.cmc(b"\x30\x03\x02\x01\x00")
    assert (answer.status, answer.fail_info) == (200, "badRequest")
    assert answer.response.statuses[0].body_parts == (0,)  # §3.2.1: 0 is the whole PKIData
    assert issued_count(cmc) == before
    refused = cmc.refusals()
    assert refused and refused[-1]["action"] == "cmc.request"
    assert str(refused[-1]["detail"]).startswith("badRequest")


@pytest.mark.parametrize(("method", "path", "content_type", "status"), [
    ("POST", "/cmc/no-such-label", "application/pkcs7-mime", 404),
    ("POST", "/.well-known/est/no-such-label/fullcmc", "application/pkcs7-mime", 404),
    ("POST", "/cmc", "application/pkcs10", 415),
    ("POST", "/cmc", "application/pkcs7-mime; smime-type=certs-only", 415),
    ("GET", "/.well-known/est/fullcmc", "application/pkcs7-mime", 405),
])
def test_where_no_pki_response_can_be_formed(cmc: InProcessCMC, method: str, path: str,
                                            content_type: str, status: int) -> None:
    response = cmc.post(path, b"\x30\x00", content_type, method)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")


def test_identity_proof_version_1(cmc: InProcessCMC) -> None:
    """RFC 5272 §6.2.2: identityProof (SHA-1, HMAC-SHA1) is still served."""
    key = new_key()
    name, secret = registration(cmc.pki, "CN=cmc-v1")
    der = sign_full_pki_request(with_proof([P.tcr(1, csr(key, "CN=cmc-v1"))], name, secret,
                                           version=1), key)
    assert cmc.cmc(der).response.statuses[0].status is CMCStatus.SUCCESS


def test_transaction_id_and_nonces(cmc: InProcessCMC) -> None:
    """RFC 5272 §6.6: transactionId echoed, senderNonce → recipientNonce, a senderNonce of
    our own; also on a refusal."""
    controls = [P.control(21, P.TRANSACTION_ID, P.integer(77)),
                P.control(22, P.SENDER_NONCE, P.octet_string(b"n-1"))]
    der, _ = enrollment(cmc.pki, "CN=cmc-nonce", controls=controls)
    answer = cmc.cmc(der)
    assert answer.response.transaction_id == 77
    assert answer.response.recipient_nonce == b"n-1"
    assert answer.response.sender_nonce and answer.response.sender_nonce != b"n-1"
    key = new_key()
    refused = cmc.cmc(sign_full_pki_request(P.encode_pki_data(controls, []), key))
    assert refused.fail_info == "badRequest" and refused.response.transaction_id == 77


@pytest.mark.parametrize(("controls", "fail_info", "part"), [
    ([P.control(5, "1.3.6.1.5.5.7.7.99", P.octet_string(b"x"))], "badRequest", 5),
    ([P.control(5, P.ADD_EXTENSIONS, P.octet_string(b"x"))], "unsupportedExt", 5),
])
def test_controls_we_do_not_serve(cmc: InProcessCMC, controls: list[bytes], fail_info: str,
                                  part: int) -> None:
    """Every control must be processed: one we do not serve fails the request, naming its
    bodyPartID; addExtensions (§6.5.2) is unsupportedExt."""
    before = issued_count(cmc)
    der, _ = enrollment(cmc.pki, "CN=cmc-control", controls=controls)
    answer = cmc.cmc(der)
    assert answer.fail_info == fail_info
    assert answer.response.statuses[0].body_parts == (part,)
    assert issued_count(cmc) == before


@pytest.mark.parametrize(("request_id", "control_id"), [(1, 1), (0, 3)])
def test_body_part_ids_unique_and_not_zero(cmc: InProcessCMC, request_id: int,
                                           control_id: int) -> None:
    """RFC 5272 §3.2.1: bodyPartIDs are unique in a PKIData; 0 names the PKIData itself."""
    key = new_key()
    data = P.encode_pki_data([P.control(control_id, P.TRANSACTION_ID, P.integer(1))],
                             [P.tcr(request_id, csr(key))])
    assert cmc.cmc(sign_full_pki_request(data, key)).fail_info == "badRequest"


def test_signed_data_must_hold_pki_data(cmc: InProcessCMC) -> None:
    """RFC 5272 §3.2: eContentType id-cct-PKIData."""
    key = new_key()
    der = sign_full_pki_request(P.encode_pki_data([], [P.tcr(1, csr(key))]), key,
                                content_type="1.2.840.113549.1.7.1")
    assert cmc.cmc(der).fail_info == "badRequest"


def test_signer_key_id_must_name_a_request_key(cmc: InProcessCMC) -> None:
    """A subjectKeyIdentifier signer is the key of a request (RFC 5272 §3.2.1.3.1)."""
    key, other = new_key(), new_key()
    name, secret = registration(cmc.pki, "CN=cmc-ski")
    der = sign_full_pki_request(with_proof([P.tcr(1, csr(key, "CN=cmc-ski"))], name, secret),
                                other)
    assert cmc.cmc(der).fail_info == "badMessageCheck"


def test_unsupported_digest_algorithm_is_bad_alg(cmc: InProcessCMC) -> None:
    key = new_key()
    der = sign_full_pki_request(P.encode_pki_data([], [P.tcr(1, csr(key))]), key)
    sha256 = bytes.fromhex("0609608648016503040201")
    sha3 = bytes.fromhex("0609608648016503040208")
    assert cmc.cmc(der.replace(sha256, sha3)).fail_info == "badAlg"


def test_revocation_without_a_certificate_is_bad_identity(cmc: InProcessCMC) -> None:
    """RFC 5272 §6.11: the passphrase authenticates nothing here; a revokeRequest is signed
    by the certificate it names."""
    der, key = enrollment(cmc.pki, "CN=cmc-revoke")
    certificate = cmc.cmc(der).certificate_for(key)
    revoke = P.revoke_request(certificate.issuer.public_bytes(), certificate.serial_number, 1)
    unsigned = sign_full_pki_request(P.encode_pki_data(
        [P.control(1, P.REVOKE_REQUEST, revoke)], []), new_key())
    assert cmc.cmc(unsigned).fail_info == "badIdentity"
    record = cmc.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record.status is CertificateStatus.GOOD
    signed = sign_full_pki_request(P.encode_pki_data(
        [P.control(1, P.REVOKE_REQUEST, revoke)], []), key, [certificate])
    answer = cmc.cmc(signed)
    assert answer.response.statuses[0].status is CMCStatus.SUCCESS
    assert answer.response.statuses[0].body_parts == (1,)
    record = cmc.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record.status is CertificateStatus.REVOKED


def test_query_pending(cmc: InProcessCMC) -> None:
    """RFC 5272 §6.1.1 pending with PendInfo, §6.13 queryPending: the token of an unknown
    request is badRequest; a poll signed by another key is badMessageCheck; after approval
    the certificate."""
    key = new_key()
    request = sign_full_pki_request(P.encode_pki_data([], [P.tcr(4, csr(key, "CN=chip-q"))]),
                                    key)
    pending = cmc.cmc(request, "components").response.statuses[0]
    assert pending.status is CMCStatus.PENDING and pending.body_parts == (4,)
    assert pending.pend_token is not None and pending.pend_time is not None

    def poll(token: bytes, signer: object) -> object:
        data = P.encode_pki_data([P.control(1, P.QUERY_PENDING, P.octet_string(token))], [])
        return cmc.cmc(sign_full_pki_request(data, signer), "components")

    assert poll(pending.pend_token, key).response.statuses[0].status is CMCStatus.PENDING
    assert poll(b"no-such-request:4", key).fail_info == "badRequest"
    assert poll(pending.pend_token, new_key()).fail_info == "badMessageCheck"
    cmc.pki.enrollment.approval.approve(pending.pend_token.decode().partition(":")[0], "op")
    done = poll(pending.pend_token, key)
    assert done.response.statuses[0].status is CMCStatus.SUCCESS
    assert done.response.statuses[0].body_parts == (4,)
    assert done.certificate_for(key).subject == x509.Name.from_rfc4514_string("CN=chip-q")


def test_previous_stage_over_fullcmc_label(cmc: InProcessCMC) -> None:
    """The EST label selects the endpoint: `devices` takes previous-stage certificates."""
    from tests.supply_chain.story import DEVICE_TARGET, make_chip, ship

    chip = make_chip(cmc.pki, 72)
    ship(cmc.pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    key = new_key()
    der = sign_full_pki_request(P.encode_pki_data([], [P.tcr(1, csr(key, "CN=sensor-72"))]),
                                chip.key, chip.chain)
    answer = cmc.fullcmc(der, "devices")
    assert answer.status == 200, answer.response
    assert answer.certificate_for(key).issuer == cmc.pki.authorities.get(
        "deviceco-devices").certificate.subject


def _read(response: object, base64_body: bool) -> object:
    from tests.cmc.client import read_answer
    return read_answer(response.status_code, response.headers, response.content, base64_body)


def test_base64_lines_are_bounded(cmc: InProcessCMC) -> None:
    """The base64 body is broken into lines (RFC 2045 §6.8: at most 76 characters)."""
    der, _ = enrollment(cmc.pki, "CN=cmc-lines")
    response = cmc.post("/.well-known/est/fullcmc", base64.encodebytes(der))
    lines = response.content.split(b"\n")
    assert all(len(line.rstrip(b"\r")) <= 76 for line in lines)
    assert re.fullmatch(rb"[A-Za-z0-9+/=\r\n]+", response.content)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, 10_000), value=st.binary(min_size=1, max_size=4))
def test_hostile_requests_get_a_cmc_answer_and_nothing_is_issued(
        cmc: InProcessCMC, at: int, value: bytes) -> None:
    """Every decoder failure is a failed CMC status (badRequest, badMessageCheck, badAlg...),
    never an HTTP error or a fault (internalCAError), and nothing is issued. (A change in a
    field nobody signs or reads, such as SignedData.version, may still be served.)"""
    if not hasattr(cmc, "valid"):
        cmc.valid = enrollment(cmc.pki, "CN=cmc-hostile")[0]  # type: ignore[attr-defined]
    valid: bytes = cmc.valid  # type: ignore[attr-defined]
    at %= len(valid)
    mutated = valid[:at] + value + valid[at + len(value):]
    before = issued_count(cmc)
    answer = cmc.cmc(mutated)
    assert answer.status == 200
    assert answer.fail_info != "internalCAError", answer.response
    if answer.fail_info is not None:
        assert issued_count(cmc) == before
    else:
        assert answer.response.statuses[0].status is CMCStatus.SUCCESS
        cmc.valid = enrollment(cmc.pki, "CN=cmc-hostile")[0]  # type: ignore[attr-defined]


def _revoke_signed_by(cmc: InProcessCMC, target: x509.Certificate, key: object,
                      signer: x509.Certificate, reason: int = 1) -> object:
    revoke = P.revoke_request(target.issuer.public_bytes(), target.serial_number, reason)
    data = P.encode_pki_data([P.control(7, P.REVOKE_REQUEST, revoke)], [])
    return cmc.cmc(sign_full_pki_request(data, key, [signer]))


@pytest.mark.parametrize(("role", "organization", "fail_info"), [
    ("operator", "operatorco", None),  # an RA of the certificate's organization
    ("auditor", "operatorco", "badIdentity"),  # a role that may not revoke
    ("operator", "chipco", "badCertId"),  # another organization's certificate: no such one
])
def test_revocation_by_an_ra_principal(cmc: InProcessCMC, role: str, organization: str,
                                       fail_info: str | None) -> None:
    """RFC 5272 §6.11 authorized as a CMP rr is (RFC 9483 §5.3.2): another certificate may
    revoke only if it is bound to an API principal whose role may revoke, for certificates
    of its organization."""
    from iotpki.core.integration.principal import Role

    ra_der, ra_key = enrollment(cmc.pki, f"CN=cmc-ra-{role}-{organization}")
    ra = cmc.cmc(ra_der).certificate_for(ra_key)
    cmc.pki.principals.create_certificate_principal(
        organization, Role(role), f"cmc-ra-{role}-{organization}", "test",
        fingerprint=fingerprint(ra))
    device_der, device_key = enrollment(cmc.pki, f"CN=cmc-device-{role}-{organization}")
    device = cmc.cmc(device_der).certificate_for(device_key)
    answer = _revoke_signed_by(cmc, device, ra_key, ra)
    assert answer.fail_info == fail_info
    assert answer.response.statuses[0].body_parts == (7,)
    status = cmc.pki.certificates.get_by_fingerprint(fingerprint(device)).status
    assert status is (CertificateStatus.GOOD if fail_info else CertificateStatus.REVOKED)


def test_revocation_of_another_certificate_without_a_principal(cmc: InProcessCMC) -> None:
    first_der, first_key = enrollment(cmc.pki, "CN=cmc-nobody-1")
    first = cmc.cmc(first_der).certificate_for(first_key)
    second_der, second_key = enrollment(cmc.pki, "CN=cmc-nobody-2")
    second = cmc.cmc(second_der).certificate_for(second_key)
    assert _revoke_signed_by(cmc, second, first_key, first).fail_info == "badIdentity"


def test_renewal_with_a_key_on_an_unknown_curve_is_refused_not_a_fault(
        cmc: InProcessCMC) -> None:
    """Found by the CMC fuzzer (`python -m fuzz --target cmc`): a renewal whose CSR names an
    unknown curve reached the renewal-lineage check, which read the key and raised
    (internalCAError). It is refused."""
    der, key = enrollment(cmc.pki, "CN=cmc-curve")
    current = cmc.cmc(der).certificate_for(key)
    prime256v1 = bytes.fromhex("06082a8648ce3d030107")
    unknown = bytes.fromhex("06082a8648ce3d030109")
    request = csr(new_key(), "CN=cmc-curve").replace(prime256v1, unknown)
    renewal = sign_full_pki_request(P.encode_pki_data([], [P.tcr(1, request)]), key, [current])
    answer = cmc.cmc(renewal)
    assert answer.fail_info in ("badAlg", "popFailed"), answer.response
