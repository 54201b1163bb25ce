"""When the operator revokes a delegated OCSP responder's certificate, the running server
stops signing with it and answers with a new one at once (issue 15 item 7), and says so in
the audit log. A real `iotpki serve` process, SQLite and PostgreSQL."""

from __future__ import annotations

import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateStatus
from tests.revocation.conftest import CA, IssueFn, Server, fetch


def responder_of(server: Server, request: bytes) -> x509.Certificate:
    status, _, body = fetch(f"{server.url}/ocsp/{CA}", request,
                            {"Content-Type": "application/ocsp-request"})
    assert status == 200
    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return response.certificates[0]


def test_revoked_responder_is_replaced_at_once(demo_pki: PKI, issue: IssueFn,
                                                private_server: Server) -> None:
    server = private_server  # its responder is revoked: not the module's shared server
    good = issue("good")
    request = ocsp.OCSPRequestBuilder().add_certificate(
        good.certificate, good.chain[0], hashes.SHA256()).build().public_bytes(Encoding.DER)
    before = responder_of(server, request)
    record = demo_pki.certificates.get_by_fingerprint(before.fingerprint(hashes.SHA256()).hex())
    demo_pki.revocation.revoke(CA, record.serial, x509.ReasonFlags.key_compromise, "cli",
                               operator=True)
    deadline = time.monotonic() + 30
    after = responder_of(server, request)
    while after == before and time.monotonic() < deadline:
        time.sleep(0.5)
        after = responder_of(server, request)
    assert after != before, "the server still signs with its revoked responder"
    replacement = demo_pki.certificates.get_by_fingerprint(
        after.fingerprint(hashes.SHA256()).hex())
    assert replacement.status is CertificateStatus.GOOD and replacement.profile == record.profile
    said = [e.record for e in demo_pki.audit.entries(limit=None)
            if e.record.action == "service.certificate.replace"]
    assert record.fingerprint in {s.details["revoked"] for s in said}
