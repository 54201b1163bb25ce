"""Two nodes (server processes) sharing one database: a revocation made elsewhere reaches
both nodes' OCSP answers once they poll the revocation counter (every 0.25 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from iotpki.app import PKI
from iotpki.core.outcomes import Issued
from iotpki.settings import Settings
from tests.revocation.conftest import CA, IssueFn, fetch
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.interop


@pytest.fixture
def nodes(demo_pki: PKI, settings: Settings, http_port: int) -> Iterator[list[ServerProcess]]:
    started = [ServerProcess(settings, http_port), ServerProcess(settings, free_port())]
    try:
        for node in started:
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


def status_on(node: ServerProcess, issued: Issued) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(
        issued.certificate, issued.chain[0], hashes.SHA1()).build().public_bytes(Encoding.DER)
    code, _, body = fetch(f"{node.url}/ocsp/{CA}", data=request)
    assert code == 200
    return ocsp.load_der_ocsp_response(body).certificate_status


def wait_for(node: ServerProcess, issued: Issued, wanted: ocsp.OCSPCertStatus) -> float:
    """Seconds until the node answers `wanted` (bounded, so a broken node fails the test)."""
    start = time.monotonic()
    while status_on(node, issued) is not wanted:
        assert time.monotonic() - start < 15, f"{node.url} never answered {wanted}"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_hold_and_a_release_reach_both_nodes(demo_pki: PKI, issue: IssueFn,
                                               nodes: list[ServerProcess]) -> None:
    lost = issue("lost")
    for node in nodes:  # both nodes now hold a pre-signed "good" answer
        assert status_on(node, lost) is ocsp.OCSPCertStatus.GOOD
    demo_pki.revocation.revoke(CA, lost.record.serial, x509.ReasonFlags.certificate_hold, "test")
    for node in nodes:
        wait_for(node, lost, ocsp.OCSPCertStatus.REVOKED)
    demo_pki.revocation.release(CA, lost.record.serial, "test")
    for node in nodes:
        wait_for(node, lost, ocsp.OCSPCertStatus.GOOD)
