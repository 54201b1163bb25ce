"""The peer authorization check, and pyhanko-certvalidator validating each stage's chain."""

from __future__ import annotations

import asyncio

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.clock import SystemClock
from iotpki.core.errors import NotFoundError
from iotpki.core.outcomes import Issued
from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.peer import PeerRejectedError, RevocationSource, RevocationStatus, check_peer
from tests.factories import domain_uri, make_csr
from tests.supply_chain.story import (
    DEVICE_TARGET,
    DOMAIN,
    OPERATIONAL_TARGET,
    advance,
    enroll,
    make_chip,
    ship,
)


def _store_status(pki: PKI) -> RevocationSource:
    """A revocation source answering from our store, as our OCSP responder would."""
    authorities = {a.certificate for a in pki.authorities.list()}

    def status(certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        if certificate in authorities:
            return RevocationStatus.GOOD  # our CAs are not revoked in these tests
        try:
            record = pki.certificates.get_by_fingerprint(fingerprint(certificate))
        except NotFoundError:
            return RevocationStatus.UNKNOWN
        good = record.status is CertificateStatus.GOOD
        return RevocationStatus.GOOD if good else RevocationStatus.REVOKED
    return status


def _service(pki: PKI, domain: str) -> Issued:
    csr, _ = make_csr("broker", [domain_uri(domain), x509.DNSName(f"broker.{domain}")])
    outcome = pki.issuance.issue(IssuanceRequest("operatorco-operations", "service", csr, "t"))
    assert isinstance(outcome, Issued), outcome
    return outcome


def _sensor(pki: PKI) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    chip = make_chip(pki, 1)
    ship(pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    device = advance(chip, *enroll(pki, chip, "sensor-0001"))
    ship(pki, "deviceco", "operatorco", [device], OPERATIONAL_TARGET)
    operational = advance(device, *enroll(pki, device, "sensor-0001"))
    return operational.chain[0], operational.chain


def test_same_domain_service_is_accepted_and_another_domain_refused(demo_pki: PKI) -> None:
    sensor, _ = _sensor(demo_pki)
    anchors = [demo_pki.authorities.get("operatorco-root").certificate]
    now = SystemClock().now()
    good = _service(demo_pki, DOMAIN)
    peer = check_peer(sensor, (good.certificate, *good.chain[:-1]), anchors,
                      _store_status(demo_pki), now)
    assert peer.domains == {DOMAIN}
    demo_pki.organizations.add_domain("operatorco", "building-7.operator.example", "t")
    other = _service(demo_pki, "building-7.operator.example")
    with pytest.raises(PeerRejectedError, match="other-domain"):
        check_peer(sensor, (other.certificate, *other.chain[:-1]), anchors,
                   _store_status(demo_pki), now)


def test_revoked_or_untrusted_peer_is_refused(demo_pki: PKI) -> None:
    sensor, _ = _sensor(demo_pki)
    now = SystemClock().now()
    good = _service(demo_pki, DOMAIN)
    chain = (good.certificate, *good.chain[:-1])
    with pytest.raises(PeerRejectedError, match="untrusted"):
        check_peer(sensor, chain, [demo_pki.authorities.get("chipco-root").certificate],
                   _store_status(demo_pki), now)
    demo_pki.revocation.revoke("operatorco-operations", good.record.serial,
                               x509.ReasonFlags.key_compromise, "t")
    with pytest.raises(PeerRejectedError, match="revoked"):
        check_peer(sensor, chain, [demo_pki.authorities.get("operatorco-root").certificate],
                   _store_status(demo_pki), now)
    with pytest.raises(PeerRejectedError, match="unknown"):
        check_peer(sensor, chain, [demo_pki.authorities.get("operatorco-root").certificate],
                   lambda c, i: RevocationStatus.UNKNOWN, now)


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


@pytest.mark.interop
def test_pyhanko_certvalidator_validates_every_stage(demo_pki: PKI) -> None:
    chip = make_chip(demo_pki, 1)
    ship(demo_pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    device = advance(chip, *enroll(demo_pki, chip, "sensor-0001"))
    ship(demo_pki, "deviceco", "operatorco", [device], OPERATIONAL_TARGET)
    operational = advance(device, *enroll(demo_pki, device, "sensor-0001"))
    for stage, root in ((chip, "chipco-root"), (device, "deviceco-root"),
                        (operational, "operatorco-root")):
        context = ValidationContext(
            trust_roots=[_asn1(demo_pki.authorities.get(root).certificate)], allow_fetching=False)
        validator = CertificateValidator(_asn1(stage.chain[0]), [_asn1(c) for c in stage.chain[1:]],
                                         validation_context=context)
        path = asyncio.run(validator.async_validate_usage({"digital_signature"}))
        assert len(path) == 3, stage.name
