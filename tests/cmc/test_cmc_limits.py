"""CMC answers that depend on the server's state rather than the request: reusable
credentials (one-time-secret method, RFC 5272 §6.2.1 with a reference as identification),
tryLater when a client floods the approval queue, internalCAError when a registration's
secret cannot be unsealed, and text 503 when no PKIResponse can be signed (nothing issued in
either case)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iotpki.app import PKI, build_sealer
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


def test_channel_binding_required_by_the_endpoint(cmc_pki: PKI, tmp_path: Path,
                                                  portal: Any) -> None:
    """RFC 7030 §3.5 over /fullcmc as over simpleenroll: on an endpoint with
    `channel_binding: true` the PKCS #10 request's challengePassword must be the TLS
    session's binding (popFailed otherwise, nothing issued)."""
    from cryptography import x509 as x
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import AttributeOID

    from iotpki.core.methods import MethodName
    from iotpki.wire.channel_binding import encode_channel_binding
    from tests.cmc.client import registration

    session = bytes(range(12))
    endpoints = Endpoints({("est", "bound"): Endpoint(
        "est", "bound", CA, "operational", (MethodName.ONE_TIME_SECRET,),
        channel_binding=True)})
    server = CMCServer(
        EndpointEnrollment(cmc_pki.database.unit_of_work, endpoints, cmc_pki.enrollment,
                           cmc_pki.profiles, cmc_pki.clock),
        cmc_pki.enrollment.approval, cmc_pki.revocation, cmc_pki.service_certificates,
        cmc_pki.database.read_unit_of_work, build_sealer(cmc_pki.settings), cmc_pki.profiles,
        cmc_pki.clock)

    def request(password: bytes | None) -> bytes:
        key = new_key()
        builder = x.CertificateSigningRequestBuilder().subject_name(parse_subject("CN=cmc-cb"))
        if password is not None:
            builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, password)
        der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        name, secret = registration(cmc_pki, "CN=cmc-cb")
        return sign_full_pki_request(with_proof([P.tcr(1, der)], name, secret), key)

    good = encode_channel_binding(session).encode()
    bound = InProcessCMC(cmc_pki, tmp_path, portal, server=server, tls_unique=session)
    unbound = InProcessCMC(cmc_pki, tmp_path, portal, server=server)
    try:
        before = issued_count(bound)
        assert bound.fullcmc(request(None), "bound").fail_info == "popFailed"
        assert bound.fullcmc(request(b"not-the-binding"), "bound").fail_info == "popFailed"
        assert unbound.fullcmc(request(good), "bound").fail_info == "popFailed"
        assert issued_count(bound) == before
        answer = bound.fullcmc(request(good), "bound")
        assert answer.response.statuses[0].status is CMCStatus.SUCCESS
    finally:
        bound.close()
        unbound.close()
