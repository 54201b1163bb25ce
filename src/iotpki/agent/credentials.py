"""What proves a first enrollment (DESIGN.md §2 enrollment methods) and the CSR a device
builds (RFC 2986), signed by any private key object (software or token)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.wire.keys import signature_hash_for


@dataclass(frozen=True)
class Credentials:
    """A one-time secret (registration id + secret) or a previous-stage identity."""

    registration_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    previous_key: Any = field(default=None, repr=False)
    previous_chain: tuple[x509.Certificate, ...] = ()
    previous_key_file: str | None = None  # for EST (TLS client authentication)
    previous_chain_file: str | None = None

    @property
    def method(self) -> str:
        if self.secret is not None:
            return "one-time-secret"
        if self.previous_chain:
            return "previous-stage-certificate"
        return "none"


def build_csr(key: Any, subject: x509.Name,
              sans: Sequence[x509.GeneralName] = ()) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(key, signature_hash_for(key)).public_bytes(Encoding.DER)


def sans_of(certificate: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []
