"""RFC 7030 §4.1 cacerts, §4.2 simpleenroll / simplereenroll, §4.5 csrattrs, driven by curl
over TLS 1.2 and 1.3, answers checked with openssl."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from tests.est.conftest import CA, DOMAIN, EST
from tests.factories import domain_uri, make_csr
from tests.supply_chain.story import DEVICE_TARGET, make_chip, ship

pytestmark = pytest.mark.interop
SAN = f"URI:urn:iotpki:domain:{DOMAIN}"


@pytest.mark.parametrize("tls", [["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]],
                         ids=["tls1.2", "tls1.3"])
def test_cacerts_and_csrattrs(est: EST, tls: list[str]) -> None:
    listing = est.certificates_from(est.curl("cacerts", *tls), "cacerts")
    assert "subject=O = OperatorCo, CN = OperatorCo Operational CA" in listing
    assert "subject=O = OperatorCo, CN = OperatorCo Root CA" in listing
    answer = est.curl("csrattrs", *tls, label="devices")
    assert answer.status == 200 and answer.headers["content-type"] == "application/csrattrs"
    parsed = est.openssl("asn1parse", "-inform", "PEM", stdin=b"-----BEGIN X-----\n" + answer.body
                         + b"-----END X-----\n")
    assert "id-ecPublicKey" in parsed and "prime256v1" in parsed and "ecdsa-with-SHA256" in parsed
    assert est.curl("cacerts", label="nowhere").status == 404


def test_simpleenroll_with_one_time_secret_then_reenroll_with_the_certificate(est: EST) -> None:
    registration, secret = est.secret_registration()
    body = est.new_key_and_csr("first", "/CN=whatever")
    answer = est.curl("simpleenroll", "-u", f"{registration}:{secret}", body=body)
    listing = est.certificates_from(answer, "first")
    assert "subject=CN = sensor-9" in listing  # the registration's subject, not the CSR's
    est.verify("first")
    assert "URI:urn:iotpki:domain:" in est.openssl("x509", "-in", "first.pem", "-noout", "-ext",
                                                   "subjectAltName")
    again = est.curl("simpleenroll", "-u", f"{registration}:{secret}", body=body)
    assert again.status == 403 and b"registration-consumed" in again.body  # single use

    renewal = est.new_key_and_csr("second", "/CN=sensor-9", SAN)
    answer = est.curl("simplereenroll", "--cert", "first.pem", "--key", "first.key", body=renewal)
    est.certificates_from(answer, "second")
    est.verify("second")
    serials = {est.openssl("x509", "-in", f"{n}.pem", "-noout", "-serial") for n in ("first", "second")}
    assert len(serials) == 2


def test_reenroll_refusals(est: EST) -> None:
    registration, secret = est.secret_registration()
    est.certificates_from(est.curl("simpleenroll", "-u", f"{registration}:{secret}",
                                   body=est.new_key_and_csr("first", "/CN=sensor-9")), "first")
    before = len(est.issued())
    other = est.new_key_and_csr("other", "/CN=someone-else", SAN)
    answer = est.curl("simplereenroll", "--cert", "first.pem", "--key", "first.key", body=other)
    assert answer.status == 403 and b"identity-mismatch" in answer.body
    without = est.curl("simplereenroll", body=est.new_key_and_csr("anon", "/CN=sensor-9", SAN))
    assert without.status == 401 and without.headers["www-authenticate"].startswith("Basic")

    serial = int(est.openssl("x509", "-in", "first.pem", "-noout", "-serial").split("=")[1], 16)
    est.pki.revocation.revoke(CA, serial, x509.ReasonFlags.key_compromise, "test")
    renewal = est.new_key_and_csr("renewal", "/CN=sensor-9", SAN)
    answer = est.curl("simplereenroll", "--cert", "first.pem", "--key", "first.key", body=renewal)
    assert answer.status == 403 and b"revoked" in answer.body
    assert len(est.issued()) == before  # nothing issued
    reasons = [r["reason"] for r in est.refusals()]
    assert "identity-mismatch" in reasons and "revoked" in reasons


def _expired_holder(est: EST, name: str, profile: str) -> None:
    csr, key = make_csr(name, [domain_uri(DOMAIN)])
    not_after = est.pki.clock.now() + timedelta(seconds=2)
    issued = est.pki.issuance.issue(IssuanceRequest(CA, profile, csr, "test",
                                                    not_after=not_after))
    assert isinstance(issued, Issued)
    _write_holder(est, name, issued.certificate, key)
    time.sleep(max(0.0, (not_after - est.pki.clock.now()).total_seconds()) + 1.1)


def test_reenroll_with_an_expired_certificate_is_refused_with_a_reason(est: EST) -> None:
    _expired_holder(est, "sensor-old", "service")  # a profile without renewal_grace
    renewal = est.new_key_and_csr("renewal", "/CN=sensor-old", SAN)
    answer = est.curl("simplereenroll", "--cert", "sensor-old.pem", "--key", "sensor-old.key",
                      body=renewal)
    assert answer.status == 403 and b"certificate-expired" in answer.body


def test_reenroll_within_the_profiles_renewal_grace_is_served(est: EST) -> None:
    # operational: renewal_grace 180d, for devices offline for months (RFC 7030 §4.2.2)
    _expired_holder(est, "sensor-away", "operational")
    renewal = est.new_key_and_csr("renewal", "/CN=sensor-away", SAN)
    answer = est.curl("simplereenroll", "--cert", "sensor-away.pem", "--key",
                      "sensor-away.key", body=renewal)
    assert answer.status == 200, answer.body


def test_simpleenroll_with_the_previous_stage_certificate(est: EST) -> None:
    chip = make_chip(est.pki, 7)
    ship(est.pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    _write_holder(est, "chip", chip.chain[0], chip.key)
    body = est.new_key_and_csr("device", "/CN=sensor-7")
    answer = est.curl("simpleenroll", "--cert", "chip.pem", "--key", "chip.key", label="devices",
                      body=body)
    listing = est.certificates_from(answer, "device")
    assert "issuer=O = DeviceCo, CN = DeviceCo Device CA" in listing
    again = est.curl("simpleenroll", "--cert", "chip.pem", "--key", "chip.key", label="devices",
                     body=est.new_key_and_csr("device2", "/CN=sensor-7"))
    assert again.status == 403 and b"registration-consumed" in again.body
    stranger = make_chip(est.pki, 8)  # on no manifest: refused (counterfeit filtering)
    _write_holder(est, "stranger", stranger.chain[0], stranger.key)
    refused = est.curl("simpleenroll", "--cert", "stranger.pem", "--key", "stranger.key",
                       label="devices", body=est.new_key_and_csr("device3", "/CN=sensor-8"))
    assert refused.status == 403 and b"not-registered" in refused.body


def test_manual_approval_answers_202_until_approved(est: EST) -> None:
    body = est.new_key_and_csr("chip", "/CN=chip-0100")
    # §3.2.3: "components" takes one-time secrets too: credentials are asked for first.
    challenge = est.curl("simpleenroll", label="components", body=body)
    assert challenge.status == 401 and challenge.body == b""
    first = est.curl("simpleenroll", label="components", body=body)  # no credentials again
    assert first.status == 202 and int(first.headers["retry-after"]) > 0
    second = est.curl("simpleenroll", label="components", body=body)  # the same request again
    assert second.status == 202
    pending = est.pki.enrollment.approval.find()
    assert len(pending) == 1  # recognized as a retry, not queued twice (§4.2.3)
    est.pki.enrollment.approval.approve(pending[0].id, "chipco:operator")
    listing = est.certificates_from(est.curl("simpleenroll", label="components", body=body), "chip")
    assert "subject=CN = chip-0100" in listing


def _write_holder(est: EST, name: str, certificate: x509.Certificate, key: object) -> None:
    from cryptography.hazmat.primitives import serialization
    (est.dir / f"{name}.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (est.dir / f"{name}.key").write_bytes(key.private_bytes(  # type: ignore[attr-defined]
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
