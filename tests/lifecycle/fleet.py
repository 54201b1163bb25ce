"""A device through the three-organization story, for the lifecycle tests: a ChipCo chip,
DeviceCo's device certificate (which records the device), OperatorCo's operational
certificate in building 42."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import select

from iotpki.app import PKI
from iotpki.core.ca.ca_certificate import CASpec
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.revocation.status import StatusEntry
from iotpki.store.schema import events
from iotpki.wire.names import parse_subject
from tests.factories import domain_uri
from tests.supply_chain.story import (
    DEVICE_TARGET,
    DOMAIN,
    OPERATIONAL_TARGET,
    Holder,
    advance,
    enroll,
    make_chip,
    ship,
)


@dataclass
class Fleet:
    device_id: str
    chip: Holder
    device: Holder  # holds the device certificate
    operational: Holder


def operational_device(pki: PKI, number: int = 1) -> Fleet:
    chip = make_chip(pki, number)
    ship(pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    outcome, key = enroll(pki, chip, f"sensor-{number:04d}")
    device = advance(chip, outcome, key)
    ship(pki, "deviceco", "operatorco", [device], OPERATIONAL_TARGET)
    outcome, key = enroll(pki, device, f"sensor-{number:04d}")
    operational = advance(device, outcome, key)
    found = pki.devices.find(owner="operatorco")
    device_id = next(d.id for d in found if chip.record.fingerprint in d.components)
    return Fleet(device_id, chip, device, operational)


def renew(pki: PKI, holder: Holder) -> Holder:
    outcome, key = enroll(pki, holder, holder.record.subject.split("=", 1)[1],
                          method="current-certificate", sans=[domain_uri(DOMAIN)])
    return advance(holder, outcome, key)


def add_organization(pki: PKI, label: str, domain: str) -> str:
    """Another operator, with its own CAs and domain, that trusts DeviceCo's devices."""
    pki.authorities.ensure_organization(label, label.capitalize(), "test")
    pki.authorities.create(f"{label}-root", label, "ec-p256", CASpec(
        parse_subject(f"CN={label} Root"), timedelta(days=3650), 1), "test")
    pki.authorities.create(f"{label}-operations", label, "ec-p256", CASpec(
        parse_subject(f"CN={label} Operations"), timedelta(days=3000), 0), "test",
        parent=f"{label}-root")
    pki.organizations.add_domain(label, domain, "test")
    pki.organizations.trust_supplier(label, "deviceco", "deviceco-root", "test")
    return f"{label}-operations"


def index_status(pki: PKI, record: CertificateRecord) -> StatusEntry:
    with pki.database.unit_of_work() as uow:
        entry = uow.revocation.lookup(record.authority, record.serial)
    assert entry is not None
    return entry


def ocsp_status(pki: PKI, holder: Holder) -> ocsp.OCSPResponse:
    """What a relying party sees: our OCSP responder's answer (RFC 6960)."""
    pki.ocsp.refresh_changes()
    request = ocsp.OCSPRequestBuilder().add_certificate(
        holder.chain[0], holder.chain[1], hashes.SHA256()).build().public_bytes(Encoding.DER)
    return ocsp.load_der_ocsp_response(pki.ocsp.respond(holder.record.authority, request).der)


def outbox(pki: PKI, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    with pki.database.engine.connect() as conn:
        rows = conn.execute(select(events.c.type, events.c.payload).order_by(events.c.id)).all()
    return [(r.type, json.loads(r.payload)) for r in rows if r.type.startswith(prefix)]


def last_audit(pki: PKI, action: str) -> Any:
    entries = [e for e in pki.audit.entries(limit=None) if e.record.action == action]
    assert entries, f"no audit entry {action}"
    return entries[-1].record


def reason_of(response: ocsp.OCSPResponse) -> x509.ReasonFlags | None:
    return response.revocation_reason
