"""Authorities: issuing CAs hosted here, and trust anchors (certificate only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property

from cryptography import x509

from iotpki.core.supply_chain.organization import check_label


class AuthorityKind(StrEnum):
    ROOT = "root"
    INTERMEDIATE = "intermediate"
    TRUST_ANCHOR = "trust-anchor"  # an external CA we trust for incoming identities; no key here


@dataclass(frozen=True)
class Authority:
    label: str
    organization: str
    kind: AuthorityKind
    certificate: x509.Certificate
    key_ref: str | None
    # Certificates above this one, nearest first, ending with the self-signed root.
    chain: tuple[x509.Certificate, ...]
    created_at: datetime
    parent: str | None = None
    # Sharded CRLs (core.ca.crl_shard): each certificate's CDP names the shard of its
    # notAfter in windows of this length. None: one CRL for the whole CA (the default).
    crl_shard_window: timedelta | None = None

    def __post_init__(self) -> None:
        check_label(self.label, "authority")

    # Parsed once: policy reads these for every request the authority serves.
    @cached_property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @cached_property
    def name_constraints(self) -> x509.NameConstraints | None:
        try:
            return self.certificate.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            return None

    @property
    def can_issue(self) -> bool:
        return self.key_ref is not None and self.kind is not AuthorityKind.TRUST_ANCHOR

    @property
    def full_chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate followed by its issuers up to the root."""
        return (self.certificate, *self.chain)
