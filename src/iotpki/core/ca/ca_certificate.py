"""CA certificates for roots and intermediates (RFC 5280 §4.2.1.9 basicConstraints,
§4.2.1.3 keyUsage, §4.2.1.10 nameConstraints)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from iotpki.core.ca.extensions import issuer_links, key_usage
from iotpki.core.ca.serial import new_serial
from iotpki.core.ca.urls import PublicURLs
from iotpki.wire.keys import signature_hash_for


@dataclass(frozen=True)
class CASpec:
    """What the operator asks for when creating a CA."""

    subject: x509.Name
    validity: timedelta
    path_length: int | None = None
    name_constraints: x509.NameConstraints | None = None


@dataclass(frozen=True)
class CAIssuer:
    """The parent that signs an intermediate."""

    label: str
    certificate: x509.Certificate
    key: Any


def build_ca_certificate(
    spec: CASpec, public_key: Any, signing_key: Any, now: datetime,
    parent: CAIssuer | None, urls: PublicURLs,
) -> x509.Certificate:
    """A self-signed root (parent None) or an intermediate signed by `parent`."""
    issuer_name = spec.subject if parent is None else parent.certificate.subject
    not_after = now + spec.validity
    if parent is not None:
        not_after = min(not_after, parent.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=spec.path_length), True)
        .add_extension(key_usage((), public_key, ca=True), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
    issuer_public: Any = public_key if parent is None else parent.certificate.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), False
    )
    if parent is not None:
        for extension, critical in issuer_links(parent.label, urls):
            builder = builder.add_extension(extension, critical)
    if spec.name_constraints is not None:
        builder = builder.add_extension(spec.name_constraints, True)  # §4.2.1.10: MUST be critical
    return builder.sign(signing_key, signature_hash_for(signing_key))


def check_ca_certificate(certificate: x509.Certificate) -> None:
    """A certificate we host as a CA or trust as an anchor must be a CA certificate."""
    try:
        bc = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise ValueError("certificate is not a CA certificate (basicConstraints cA is not set)")
    try:
        ku = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not ku.key_cert_sign:
        raise ValueError("CA certificate's keyUsage lacks keyCertSign")
