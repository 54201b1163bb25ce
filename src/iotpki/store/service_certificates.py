"""Service certificates (`core.ca.service_certificates`): one table for every key and
certificate the service holds for itself; the newest row of an (owner, purpose) is current."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, select

from iotpki.core.ca.ports import Purpose, ServiceCertificate
from iotpki.store.prepared import Prepared
from iotpki.store.schema import service_certificates

# Writes (store.prepared: the one write path).
_ADD = Prepared(service_certificates.insert().inline(), (
    "owner", "purpose", "key_ref", "certificate", "created_at"))


class SQLServiceCertificateRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, record: ServiceCertificate) -> None:
        _ADD.execute(self._conn, dict(
            owner=record.owner, purpose=record.purpose.value, key_ref=record.key_ref,
            certificate=record.certificate.public_bytes(Encoding.DER),
            created_at=record.created_at))

    def current(self, owner: str, purpose: Purpose) -> ServiceCertificate | None:
        c = service_certificates.c
        row = self._conn.execute(select(c.key_ref, c.certificate, c.created_at).where(
            c.owner == owner, c.purpose == purpose.value).order_by(c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return ServiceCertificate(owner, purpose, row.key_ref,
                                  x509.load_der_x509_certificate(row.certificate), row.created_at)
