"""`iotpki init --demo`: the three organizations of the story (DESIGN.md §1), each with a
root and an issuing CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.authority import Authority
from iotpki.core.ca.ca_certificate import CASpec
from iotpki.wire.names import parse_subject


@dataclass(frozen=True)
class DemoOrganization:
    label: str
    name: str
    issuing: str  # label of the issuing CA
    issuing_name: str


DEMO = (
    DemoOrganization("chipco", "ChipCo", "chipco-components", "ChipCo Component CA"),
    DemoOrganization("deviceco", "DeviceCo", "deviceco-devices", "DeviceCo Device CA"),
    DemoOrganization("operatorco", "OperatorCo", "operatorco-operations",
                     "OperatorCo Operational CA"),
)
ACTOR = "cli:init --demo"
DEMO_DOMAIN = "building-42.operator.example"
# Who accepts identities from whom (DESIGN.md §1): DeviceCo takes ChipCo's chips,
# OperatorCo takes DeviceCo's sensors.
DEMO_TRUST = (("deviceco", "chipco", "chipco-root"), ("operatorco", "deviceco", "deviceco-root"))


def create_demo_hierarchy(pki: PKI) -> list[Authority]:
    """Idempotent: authorities that already exist are left as they are."""
    created = []
    existing = {a.label for a in pki.authorities.list()}
    for org in DEMO:
        pki.authorities.ensure_organization(org.label, org.name, ACTOR)
        root = f"{org.label}-root"
        if root not in existing:
            created.append(pki.authorities.create(
                root, org.label, "ec-p384",
                CASpec(_subject(f"{org.name} Root CA", org.name), timedelta(days=20 * 365), 1),
                ACTOR))
        if org.issuing not in existing:
            created.append(pki.authorities.create(
                org.issuing, org.label, "ec-p256",
                CASpec(_subject(org.issuing_name, org.name), timedelta(days=10 * 365), 0),
                ACTOR, parent=root))
    _demo_relations(pki)
    return created


def _demo_relations(pki: PKI) -> None:
    if not pki.organizations.domains("operatorco"):
        pki.organizations.add_domain("operatorco", DEMO_DOMAIN, ACTOR)
    for organization, supplier, anchor in DEMO_TRUST:
        if (supplier, anchor) not in pki.organizations.suppliers(organization):
            pki.organizations.trust_supplier(organization, supplier, anchor, ACTOR)


def _subject(common_name: str, organization: str) -> x509.Name:
    return parse_subject(f"CN={common_name},O={organization}")
