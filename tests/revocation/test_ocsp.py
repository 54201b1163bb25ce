"""The OCSP responder's answers (RFC 6960 §2.2, §2.3, §4.2.2.2) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from iotpki.app import PKI, build_pki
from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from iotpki.wire.der import SEQUENCE, children, read_tlv, tlv
from iotpki.wire.ocsp import decode_ocsp_request
from tests.revocation.conftest import CA, IssueFn, revoke
from tests.servers import ManualClock

Status = ocsp.OCSPResponseStatus
Cert = ocsp.OCSPCertStatus


def request_for(issued: Issued, algorithm: hashes.HashAlgorithm = hashes.SHA1(),
                nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, issued.chain[0],
                                                        algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), False)
    return builder.build().public_bytes(Encoding.DER)


def answer(pki: PKI, request: bytes, authority: str = CA) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(pki.ocsp.respond(authority, request).der)


def test_statuses_come_from_the_index(demo_pki: PKI, issue: IssueFn) -> None:
    good, stolen, lost = issue("good"), issue("stolen"), issue("lost")
    revoke(demo_pki, stolen, x509.ReasonFlags.key_compromise)
    revoke(demo_pki, lost, x509.ReasonFlags.certificate_hold)
    assert answer(demo_pki, request_for(good)).certificate_status is Cert.GOOD
    revoked = answer(demo_pki, request_for(stolen, hashes.SHA256()))
    assert revoked.certificate_status is Cert.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    held = answer(demo_pki, request_for(lost))
    assert held.revocation_reason is x509.ReasonFlags.certificate_hold
    unknown = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        revoked.issuer_name_hash, revoked.issuer_key_hash, 12345, hashes.SHA256()).build()
    assert answer(demo_pki, unknown.public_bytes(Encoding.DER)).certificate_status is Cert.UNKNOWN


def test_responses_are_signed_by_a_delegated_responder(demo_pki: PKI, issue: IssueFn) -> None:
    good = issue("good")
    response = answer(demo_pki, request_for(good))
    responder = response.certificates[0]
    responder.verify_directly_issued_by(good.chain[0])
    ext = responder.extensions
    assert ext.get_extension_for_class(x509.OCSPNoCheck)
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.OCSP_SIGNING]
    assert response.responder_key_hash == ext.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    public_key = responder.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    public_key.verify(response.signature, response.tbs_response_bytes,
                      ec.ECDSA(response.signature_hash_algorithm))


def test_bad_requests_get_error_statuses(demo_pki: PKI, issue: IssueFn) -> None:
    good = issue("good")
    assert demo_pki.ocsp.respond(CA, b"\x30\x03\x02\x01").status is Status.MALFORMED_REQUEST
    assert demo_pki.ocsp.respond(CA, b"").status is Status.MALFORMED_REQUEST
    assert demo_pki.ocsp.respond("nobody", request_for(good)).status is Status.UNAUTHORIZED
    # The root is an authority here, but the CertID names the operational CA.
    assert demo_pki.ocsp.respond("operatorco-root",
                                 request_for(good)).status is Status.UNAUTHORIZED


def test_cached_answers_follow_revocations_after_a_refresh(demo_pki: PKI, issue: IssueFn) -> None:
    lost = issue("lost")
    first = demo_pki.ocsp.respond(CA, request_for(lost))
    assert first.cacheable
    assert demo_pki.ocsp.respond(CA, request_for(lost)).der == first.der  # pre-signed
    revoke(demo_pki, lost, x509.ReasonFlags.certificate_hold)
    assert demo_pki.ocsp.refresh_changes() == 1
    assert answer(demo_pki, request_for(lost)).certificate_status is Cert.REVOKED
    demo_pki.revocation.release(CA, lost.record.serial, "test")
    demo_pki.ocsp.refresh_changes()
    assert answer(demo_pki, request_for(lost)).certificate_status is Cert.GOOD


def test_a_revocation_on_another_node_reaches_this_one(
        demo_pki: PKI, issue: IssueFn, settings: Settings) -> None:
    stolen = issue("stolen")
    assert answer(demo_pki, request_for(stolen)).certificate_status is Cert.GOOD
    other = build_pki(settings)
    try:
        other.revocation.revoke(CA, stolen.record.serial, x509.ReasonFlags.key_compromise, "t")
    finally:
        other.close()
    demo_pki.ocsp.refresh_changes()
    assert answer(demo_pki, request_for(stolen)).certificate_status is Cert.REVOKED


def test_a_nonce_is_echoed_in_a_fresh_response(demo_pki: PKI, issue: IssueFn) -> None:
    good = issue("good")
    first = demo_pki.ocsp.respond(CA, request_for(good, nonce=b"n" * 16))
    second = demo_pki.ocsp.respond(CA, request_for(good, nonce=b"m" * 16))
    assert not first.cacheable and first.der != second.der
    response = ocsp.load_der_ocsp_response(first.der)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16


def test_several_certificates_in_one_request(demo_pki: PKI, issue: IssueFn) -> None:
    good, stolen = issue("good"), issue("stolen")
    revoke(demo_pki, stolen, x509.ReasonFlags.superseded)
    request = _two_cert_request(good, stolen)
    assert len(decode_ocsp_request(request).cert_ids) == 2
    response = answer(demo_pki, request)
    statuses = {r.serial_number: r.certificate_status for r in response.responses}
    assert statuses == {good.record.serial: Cert.GOOD, stolen.record.serial: Cert.REVOKED}


def _two_cert_request(first: Issued, second: Issued) -> bytes:
    """DER of an OCSPRequest with two CertIDs (RFC 6960 §4.1.1), from two one-cert requests."""
    items = []
    for issued in (first, second):
        der = request_for(issued)
        _, start, end = read_tlv(der, 0)
        _, tbs_start, tbs_end = next(children(der, start, end))
        _, tbs_value, _ = read_tlv(der, tbs_start)
        _, list_start, _ = next(children(der, tbs_value, tbs_end))
        _, value, value_end = read_tlv(der, list_start)
        items.append(der[value:value_end])
    return tlv(SEQUENCE, tlv(SEQUENCE, tlv(SEQUENCE, b"".join(items))))


def test_the_responder_is_replaced_before_it_expires(demo_pki: PKI) -> None:
    clock = ManualClock(datetime.now(UTC))
    certificates = ServiceCertificates(demo_pki.database.unit_of_work, demo_pki.keys,
                                       demo_pki.issuance, clock)
    first = certificates.current(CA, Purpose.OCSP_SIGNING)
    assert certificates.current(CA, Purpose.OCSP_SIGNING) is first
    life = first.record.certificate.not_valid_after_utc - clock.moment
    clock.moment += life * 0.5
    assert certificates.current(CA, Purpose.OCSP_SIGNING).record == first.record
    clock.moment += life * 0.3  # into the last third
    second = certificates.current(CA, Purpose.OCSP_SIGNING)
    assert second.record.certificate.serial_number != first.record.certificate.serial_number
    assert second.record.not_after > first.record.not_after - timedelta(seconds=1)


@pytest.mark.parametrize("garbage", [b"\x00", b"\x30\x80", b"\x30\x82\xff\xff", bytes(range(64))])
def test_garbage_never_raises(demo_pki: PKI, garbage: bytes) -> None:
    assert demo_pki.ocsp.respond(CA, garbage).status is Status.MALFORMED_REQUEST


def test_only_fresh_pre_signed_answers_come_from_the_cache(demo_pki: PKI, issue: IssueFn) -> None:
    good = issue("good")
    request = request_for(good)
    assert demo_pki.ocsp.answer_from_cache(CA, request) is None  # never answered yet
    signed = demo_pki.ocsp.respond(CA, request)
    assert demo_pki.ocsp.answer_from_cache(CA, request) == signed
    assert demo_pki.ocsp.answer_from_cache(CA, request_for(good, nonce=b"x" * 16)) is None
    malformed = demo_pki.ocsp.answer_from_cache(CA, b"junk")
    assert malformed is not None and malformed.status is Status.MALFORMED_REQUEST
    revoke(demo_pki, good, x509.ReasonFlags.superseded)
    demo_pki.ocsp.refresh_changes()
    assert demo_pki.ocsp.answer_from_cache(CA, request) is None
