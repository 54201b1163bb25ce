"""A supplier that runs its own PKI: its chips are trusted through an imported anchor and
checked against its CRL, fetched over HTTP from their distribution point (fail closed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iotpki.app import PKI
from iotpki.core.errors import RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.possession import sign_possession
from tests.factories import make_csr

NOW = datetime.now(UTC)


class CRLServer:
    """A plain HTTP server on loopback serving whatever CRL the test puts in `crls`."""

    def __init__(self) -> None:
        crls: dict[str, bytes] = {}
        self.crls = crls

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = crls.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/pkix-crl")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def crl_server() -> Iterator[CRLServer]:
    server = CRLServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SupplierCorp"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class ExternalCA:
    """SupplierCorp's own CA, built with plain `cryptography`: nothing of iotpki in it."""

    def __init__(self, crl_url: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.crl_url = crl_url
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (x509.CertificateBuilder().subject_name(_name("SupplierCorp Root"))
                     .issuer_name(_name("SupplierCorp Root")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
                     .not_valid_after(NOW + timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(True, False, False, False, False, True, True,
                                                  False, False), True)
                     .add_extension(ski, False).sign(self.key, hashes.SHA256()))

    def chip(self, number: int) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(f"chip-{number}"))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
                .not_valid_after(NOW + timedelta(days=365))
                .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(self.crl_url)], None, None, None)]), False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), False)
                .sign(self.key, hashes.SHA256()))
        return cert, key

    def crl(self, revoked: list[x509.Certificate]) -> bytes:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(NOW - timedelta(minutes=1)).next_update(NOW + timedelta(hours=1)))
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                .revocation_date(NOW - timedelta(minutes=1)).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _setup(pki: PKI, supplier: ExternalCA) -> None:
    pki.authorities.ensure_organization("suppliercorp", "SupplierCorp", "t")
    pki.authorities.import_trust_anchor("suppliercorp-root", "suppliercorp", supplier.cert, "t")
    pki.organizations.trust_supplier("deviceco", "suppliercorp", "suppliercorp-root", "t")


def _enroll(pki: PKI, chip: x509.Certificate, key: Any) -> Issued | Rejected:
    pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_issuer=chip.issuer.rfc4514_string(), identity_serial=format(chip.serial_number, "x")),
        "deviceco:crm")
    csr, _ = make_csr("sensor-ext")
    outcome = pki.enrollment.enroll(EnrollmentRequest(
        csr, "device", client_chain=(chip,), possession_signature=sign_possession(key, csr)),
        "previous-stage-certificate")
    assert not hasattr(outcome, "request_id")
    return outcome  # type: ignore[return-value]


def test_good_chip_of_an_external_supplier_is_accepted(demo_pki: PKI, crl_server: CRLServer) -> None:
    supplier = ExternalCA(f"{crl_server.url}/supplier.crl")
    _setup(demo_pki, supplier)
    chip, key = supplier.chip(1)
    crl_server.crls["/supplier.crl"] = supplier.crl([])
    assert isinstance(_enroll(demo_pki, chip, key), Issued)


def test_chip_on_the_suppliers_crl_is_refused(demo_pki: PKI, crl_server: CRLServer) -> None:
    supplier = ExternalCA(f"{crl_server.url}/supplier.crl")
    _setup(demo_pki, supplier)
    chip, key = supplier.chip(2)
    crl_server.crls["/supplier.crl"] = supplier.crl([chip])
    outcome = _enroll(demo_pki, chip, key)
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REVOKED


def test_unreachable_crl_fails_closed(demo_pki: PKI, crl_server: CRLServer) -> None:
    supplier = ExternalCA(f"{crl_server.url}/missing.crl")
    _setup(demo_pki, supplier)
    chip, key = supplier.chip(3)
    outcome = _enroll(demo_pki, chip, key)
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REVOCATION_UNKNOWN


def test_crl_signed_by_someone_else_is_not_believed(demo_pki: PKI, crl_server: CRLServer) -> None:
    supplier = ExternalCA(f"{crl_server.url}/supplier.crl")
    impostor = ExternalCA(f"{crl_server.url}/supplier.crl")
    _setup(demo_pki, supplier)
    chip, key = supplier.chip(4)
    crl_server.crls["/supplier.crl"] = impostor.crl([])  # same name, wrong key
    outcome = _enroll(demo_pki, chip, key)
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.REVOCATION_UNKNOWN
