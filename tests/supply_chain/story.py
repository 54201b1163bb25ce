"""Steps of the story (DESIGN.md §1) shared by the supply-chain tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.supply_chain.manifests import ImportTarget
from iotpki.wire.possession import sign_possession
from tests.factories import make_csr

DOMAIN = "building-42.operator.example"


@dataclass
class Holder:
    """A chip or device: its key and its current certificate chain (leaf first)."""

    name: str
    key: Any
    chain: tuple[x509.Certificate, ...]
    record: CertificateRecord


def make_chip(pki: PKI, number: int, authority: str = "chipco-components") -> Holder:
    """ChipCo's provisioning station: a key made on the chip, a component certificate."""
    name = f"chip-{number:04d}"
    csr, key = make_csr(name, [x509.UniformResourceIdentifier(f"urn:chipco:chip:{number:04d}")])
    outcome = pki.issuance.issue(IssuanceRequest(authority, "component", csr,
                                                 "chipco:provisioning-station-1"))
    assert isinstance(outcome, Issued), outcome
    return Holder(name, key, (outcome.certificate, *outcome.chain[:-1]), outcome.record)


def ship(pki: PKI, sender: str, recipient: str, items: list[Holder],
         target: ImportTarget) -> bytes:
    signed = pki.manifests.export(sender, recipient, [h.record for h in items], f"{sender}:ra")
    pki.manifests.import_manifest(recipient, signed, target, f"{recipient}:ra")
    return signed


def enroll(pki: PKI, holder: Holder, name: str, method: str = "previous-stage-certificate",
           sans: list[x509.GeneralName] | None = None, authority: str | None = None,
           key_type: str = "ec-p256") -> tuple[Issued | Rejected, Any]:
    """The device makes a new key and proves the previous identity by signing its CSR."""
    csr, key = make_csr(name, sans or [], key_type=key_type)
    request = EnrollmentRequest(
        csr=csr, requester=f"device:{holder.name}", client_chain=holder.chain,
        possession_signature=sign_possession(holder.key, csr), authority=authority)
    return pki.enrollment.enroll(request, method), key


def advance(holder: Holder, outcome: Issued | Rejected, key: Any) -> Holder:
    assert isinstance(outcome, Issued), outcome
    return Holder(holder.name, key, (outcome.certificate, *outcome.chain[:-1]), outcome.record)


DEVICE_TARGET = ImportTarget("deviceco-devices", "device", timedelta(days=90))
OPERATIONAL_TARGET = ImportTarget("operatorco-operations", "operational", timedelta(days=90),
                                  domain=DOMAIN)
