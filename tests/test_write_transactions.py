"""One write transaction per request, and none for what only reads (issue 21).

SQLite has one writer at a time: a unit of work that writes begins `BEGIN IMMEDIATE` (it
takes the write lock up front), one that only reads begins a deferred `BEGIN`, which in WAL
mode reads a snapshot and never waits for the writer nor makes it wait. The tests record
every statement SQLite runs (the driver's trace callback) while one request is served and
count the write transactions: an EST renewal (RFC 7030 §4.2.2) and a CMP cr signed with the
current certificate (RFC 9483 §4.1.2, its senderNonce and transaction recorded in the same
transaction as the certificate), a SCEP PKCSReq (RFC 8894 §3.3.1, its senderNonce likewise).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc9480
from sqlalchemy import event

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.keys import generate_private_key
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


@pytest.fixture
def statements(demo_pki: PKI) -> Iterator[list[str]]:
    """Every SQL statement the PKI's connections run from now on (SQLite only)."""
    if demo_pki.database.dialect != "sqlite":
        pytest.skip("SQLite's write lock (PostgreSQL has no database-wide write lock)")
    seen: list[str] = []
    engine = demo_pki.database.engine
    engine.dispose()  # connections made from here on carry the trace

    def trace(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.set_trace_callback(seen.append)  # type: ignore[attr-defined]

    event.listen(engine, "connect", trace)
    yield seen
    event.remove(engine, "connect", trace)


def _writes(seen: list[str]) -> int:
    return sum(1 for statement in seen if statement.strip().upper() == "BEGIN IMMEDIATE")


def _device(pki: PKI, name: str) -> tuple[object, Issued]:
    csr, key = make_csr(name, [domain_uri(DOMAIN)])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(outcome, Issued), outcome
    return key, outcome


def test_est_renewal_is_one_write_transaction(demo_pki: PKI, statements: list[str]) -> None:
    """RFC 7030 §4.2.2 simplereenroll through the core: the current-certificate look-up is a
    deferred (read) transaction; the certificate, its audit entry and event one write."""
    _, current = _device(demo_pki, "sensor-renew")
    renewal, _ = make_csr("sensor-renew", [domain_uri(DOMAIN)])
    statements.clear()
    outcome = demo_pki.enrollment.enroll(EnrollmentRequest(
        csr=renewal, requester="est:test", client_chain=(current.certificate, *current.chain),
        possession="tls"), MethodName.CURRENT_CERTIFICATE)
    assert isinstance(outcome, Issued), outcome
    assert _writes(statements) == 1
    assert "BEGIN" in (s.strip().upper() for s in statements)  # the reads: deferred


def test_reads_never_take_the_write_lock(demo_pki: PKI, statements: list[str]) -> None:
    """Look-ups served to protocols (a certificate by fingerprint, a secret registration by
    name, the audit log) begin deferred transactions."""
    _, current = _device(demo_pki, "sensor-read")
    statements.clear()
    demo_pki.certificates.get_by_fingerprint(current.record.fingerprint)
    assert demo_pki.registrations.for_secret("no-such-registration") is None
    demo_pki.audit.entries(limit=5)
    assert _writes(statements) == 0
    assert "BEGIN" in (s.strip().upper() for s in statements)


def test_cmp_cr_is_one_write_transaction(demo_pki: PKI, statements: list[str]) -> None:
    """RFC 9483 §4.1.2 cr signed with the current certificate, implicitConfirm: the
    senderNonce (§3.5), the transaction and the certificate are written in one transaction."""
    key, current = _device(demo_pki, "sensor-cmp")
    demo_pki.cmp.handle("", decode_pki_message(_cr(key, current)))  # CMP parts built, caches warm
    key, current = _device(demo_pki, "sensor-cmp-2")
    statements.clear()
    answer = demo_pki.cmp.handle("", decode_pki_message(_cr(key, current)))
    message, _ = decoder.decode(answer, asn1Spec=rfc9480.PKIMessage())
    assert int(message["body"]["cp"]["response"][0]["status"]["status"]) == 0
    assert _writes(statements) == 1


def _cr(key: object, current: Issued) -> bytes:
    subject = current.certificate.subject
    assert isinstance(subject, x509.Name)
    return encode_signed_request(
        "cr", encode_cert_req_msg(generate_private_key("ec-p256"), subject), key,
        (current.certificate, *current.chain[:-1]), datetime.now(UTC))


def test_scep_pkcsreq_is_one_write_transaction(demo_pki: PKI, statements: list[str]) -> None:
    """RFC 8894 §3.3.1 PKCSReq with a one-time secret: the senderNonce (§3.2.1.5) is written
    in the transaction that stores the certificate and consumes the registration."""
    from iotpki.app import scep_server
    from iotpki.core.ra.registration import RegistrationMethod
    from iotpki.core.ra.registration_service import RegistrationSpec
    from iotpki.wire.names import parse_subject
    from iotpki.wire.scep.attributes import MessageType, PKIStatus
    from tests.scep.conftest import Requester, csr_der

    server = scep_server(demo_pki)
    endpoint = server.endpoint("")
    ra = server.ra_signer(endpoint).certificate  # issued now: the service's own write

    def pkcsreq(name: str) -> PKIStatus | None:
        created = demo_pki.registrations.create(RegistrationSpec(
            "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
            subject=parse_subject(f"CN={name}"), domain=DOMAIN), "test")
        requester = Requester.new()
        message, _ = requester.message(MessageType.PKCS_REQ, csr_der(
            requester.key, f"CN={name}", f"{created.registration.id}:{created.secret}"), ra)
        statements.clear()
        return requester.open(server.operation(endpoint, message, "192.0.2.1"), ra)[0].pki_status

    assert pkcsreq("scep-warm") is PKIStatus.SUCCESS  # caches warm
    assert pkcsreq("scep-one-write") is PKIStatus.SUCCESS
    assert _writes(statements) == 1
