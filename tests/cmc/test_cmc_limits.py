"""CMC answers that depend on the server's state rather than the request: reusable
credentials (one-time-secret method, RFC 5272 §6.2.1 with a reference as identification),
tryLater when a client floods the approval queue, internalCAError when a registration's
secret cannot be unsealed, and text 503 when no PKIResponse can be signed (nothing issued in
either case)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iotpki.app import PKI
from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
from iotpki.core.ra.endpoints import Endpoint, Endpoints
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.keys.sealing import PassphraseSealer
from iotpki.protocols.cmc.server import CMCServer
from iotpki.wire.cmc import pki_data as P
from iotpki.wire.cmc.request import sign_full_pki_request
from iotpki.wire.cmc.response import CMCStatus
from iotpki.wire.names import parse_subject
from tests.cmc.client import CA, DOMAIN, csr, enrollment, new_key, with_proof
from tests.cmc.conftest import InProcessCMC
from tests.cmc.test_cmc import issued_count


def test_reusable_credential_until_used_up(cmc: InProcessCMC) -> None:
    """The identification names a reusable credential by its reference; each use is one
    issuance, then it is used up (badIdentity)."""
    created = cmc.pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject("CN=cmc-line"), domain=DOMAIN, reference="cmc-line-7", uses=2),
        "operatorco:crm")
    assert created.secret is not None

    def enroll() -> Any:
        key = new_key()
        data = with_proof([P.tcr(1, csr(key, "CN=cmc-line"))], "cmc-line-7", created.secret)
        return cmc.cmc(sign_full_pki_request(data, key))

    assert [enroll().response.statuses[0].status for _ in range(2)] == [CMCStatus.SUCCESS] * 2
    assert enroll().fail_info == "badIdentity"


def test_try_later_when_one_client_floods_the_approval_queue(
        cmc_pki: PKI, tmp_path: Path, portal: Any) -> None:
    """Requests without credentials must not fill the approval queue: past the per-client
    budget the answer is tryLater (RFC 5272 §6.1.4), over EST 503 + Retry-After."""
    flood = InProcessCMC(cmc_pki, tmp_path, portal, client=("10.9.9.9", 1))
    try:
        statuses = []
        for n in range(cmc_pki.settings.approval_submissions_per_minute + 1):
            key = new_key()
            der = sign_full_pki_request(P.encode_pki_data(
                [], [P.tcr(1, csr(key, f"CN=chip-flood-{n}"))]), key)
            statuses.append(flood.cmc(der, "components").response.statuses[0])
        assert {s.status for s in statuses[:-1]} == {CMCStatus.PENDING}
        assert statuses[-1].fail_info == "tryLater"
        response = flood.post("/.well-known/est/components/fullcmc", b"MAA=")
        assert response.status_code == 400  # not a Full PKI Request: refused before queueing
    finally:
        flood.close()


def test_unreadable_secret_is_internal_ca_error(cmc_pki: PKI, tmp_path: Path,
                                               portal: Any) -> None:
    """A registration sealed under another key (a changed passphrase) is a fault of ours:
    failed internalCAError, 503 over EST, audited; nothing issued."""
    server = CMCServer(
        EndpointEnrollment(cmc_pki.database.unit_of_work, cmc_pki.endpoints,
                           cmc_pki.enrollment, cmc_pki.profiles, cmc_pki.clock),
        cmc_pki.enrollment.approval, cmc_pki.revocation, cmc_pki.service_certificates,
        cmc_pki.database.read_unit_of_work, PassphraseSealer(b"another passphrase"),
        cmc_pki.profiles, cmc_pki.clock)
    scene = InProcessCMC(cmc_pki, tmp_path, portal, server=server)
    try:
        before = issued_count(scene)
        der, _ = enrollment(cmc_pki, "CN=cmc-unsealed")
        answer = scene.fullcmc(der)
        assert (answer.status, answer.fail_info) == (503, "internalCAError")
        assert answer.headers["retry-after"] == "60"
        assert issued_count(scene) == before
        assert any(str(r["detail"]).startswith("internalCAError") for r in scene.refusals())
    finally:
        scene.close()


def test_no_signing_certificate_is_a_text_503(cmc_pki: PKI, tmp_path: Path,
                                              portal: Any) -> None:
    """Where no PKIResponse can be signed (the endpoint's CA is gone), a text 503 and
    nothing is served."""
    endpoints = Endpoints({("cmc", "gone"): Endpoint("cmc", "gone", "no-such-ca",
                                                     "operational",
                                                     cmc_pki.endpoints.get("cmc").methods)})
    server = CMCServer(
        EndpointEnrollment(cmc_pki.database.unit_of_work, endpoints, cmc_pki.enrollment,
                           cmc_pki.profiles, cmc_pki.clock),
        cmc_pki.enrollment.approval, cmc_pki.revocation, cmc_pki.service_certificates,
        cmc_pki.database.read_unit_of_work, None, cmc_pki.profiles, cmc_pki.clock)
    scene = InProcessCMC(cmc_pki, tmp_path, portal, server=server)
    try:
        response = scene.post("/cmc/gone", enrollment(cmc_pki, "CN=cmc-gone")[0])
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["retry-after"] == "60"
    finally:
        scene.close()
