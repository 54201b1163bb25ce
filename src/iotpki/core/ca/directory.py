"""Looking up issued certificates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.ports import CertificateQuery, CertificateRepository
from iotpki.core.errors import NotFoundError
from iotpki.core.ports import Transaction


class CertificateUnitOfWork(Transaction, Protocol):
    """The repositories the certificate directory uses."""

    @property
    def certificates(self) -> CertificateRepository: ...


class CertificateDirectory:
    def __init__(self, uow: Callable[[], CertificateUnitOfWork]) -> None:
        self._uow = uow

    def find(self, query: CertificateQuery) -> list[CertificateRecord]:
        with self._uow() as uow:
            return uow.certificates.find(query)

    def get(self, authority: str, serial: int) -> CertificateRecord:
        with self._uow() as uow:
            record = uow.certificates.get(authority, serial)
        if record is None:
            raise NotFoundError(f"no certificate {serial:x} issued by {authority!r}")
        return record

    def get_by_fingerprint(self, fingerprint: str) -> CertificateRecord:
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(fingerprint)
        if record is None:
            raise NotFoundError(f"no certificate with SHA-256 fingerprint {fingerprint}")
        return record
