"""Issued certificates as the store keeps them: DER plus the indexed facts about it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.ca.key_facts import KeyFacts
from iotpki.core.ca.serial import serial_hex
from iotpki.core.supply_chain.domain import DOMAIN_URN_PREFIX
from iotpki.wire.names import format_san


def renewal_time(certificate: x509.Certificate, fraction: float) -> datetime:
    """When the last `fraction` of the certificate's lifetime begins: the moment a
    delegated certificate (OCSP responder, CMP protection) is replaced."""
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return certificate.not_valid_after_utc - lifetime * fraction


class CertificateStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    HELD = "on-hold"  # revoked with certificateHold (RFC 5280 §5.3.1); may be released


@dataclass(frozen=True)
class CertificateRecord:
    authority: str
    serial: int
    fingerprint: str  # SHA-256 of the DER, lowercase hex
    subject: str  # RFC 4514
    sans: tuple[str, ...]  # `type:value`
    not_before: datetime
    not_after: datetime
    profile: str
    der: bytes
    issued_at: datetime
    status: CertificateStatus = CertificateStatus.GOOD
    revoked_at: datetime | None = None
    revocation_reason: str | None = None  # x509.ReasonFlags value, e.g. "keyCompromise"
    crl_shard: int | None = None  # the CRL shard its CDP names (core.ca.crl_shard)
    # Where the store keeps it, in issue order (keyset pagination: `CertificateQuery.after`);
    # None until stored. Not part of the record's value.
    position: int | None = field(default=None, compare=False)
    # Its public key's identity and strength (posture checks), when known without parsing.
    key: KeyFacts | None = field(default=None, compare=False)

    @property
    def key_facts(self) -> KeyFacts:
        return self.key if self.key is not None else KeyFacts.of(self.certificate.public_key())

    @property
    def domain(self) -> str | None:
        """The operational domain the store indexes (the first, if it named several)."""
        return min(self.domains, default=None)

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    @property
    def domains(self) -> set[str]:
        """The operational domains named by SAN URIs `urn:iotpki:domain:<domain>`."""
        prefix = f"uri:{DOMAIN_URN_PREFIX}"
        return {s[len(prefix):] for s in self.sans if s.startswith(prefix)}

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    @classmethod
    def issued(
        cls, cert: x509.Certificate, subject: x509.Name, sans: Sequence[x509.GeneralName], *,
        authority: str, profile: str, issued_at: datetime, crl_shard: int | None = None,
    ) -> CertificateRecord:
        """The record of a certificate we just built from these names (no re-parsing)."""
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(
            authority=authority, serial=cert.serial_number,
            fingerprint=hashlib.sha256(der).hexdigest(), subject=subject.rfc4514_string(),
            sans=tuple(format_san(n) for n in sans), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, profile=profile, der=der, issued_at=issued_at,
            crl_shard=crl_shard, key=KeyFacts.of(cert.public_key()),
        )
