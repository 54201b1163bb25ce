"""The peer authorization check: the operational domain as authorization (DESIGN.md §1 step 5).

A sensor delivers data only to a service whose certificate names the same domain, and a
service accepts only devices of its domain. `check_peer` accepts a peer only if its chain
validates to one of our trust anchors (RFC 5280 §6, via `cryptography`), its certificate
is not revoked (asked of a revocation source: OCSP or CRL results the caller caches; an
unknown status is refused, failing closed), and it names at least one domain
(SAN URI `urn:iotpki:domain:<domain>`) that our own certificate names too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509

from iotpki.wire.errors import PKIError
from iotpki.wire.path import ChainError, validate_chain

DOMAIN_URN_PREFIX = "urn:iotpki:domain:"


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


# (certificate, its issuer) -> status; e.g. an OCSP client or a CRL cache.
RevocationSource = Callable[[x509.Certificate, x509.Certificate], RevocationStatus]


class PeerRejectedError(PKIError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class AuthorizedPeer:
    certificate: x509.Certificate
    domains: frozenset[str]  # the domains both sides share


def certificate_domains(certificate: x509.Certificate) -> frozenset[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(uri[len(DOMAIN_URN_PREFIX):]
                     for uri in sans.get_values_for_type(x509.UniformResourceIdentifier)
                     if uri.startswith(DOMAIN_URN_PREFIX))


def crl_status(crl: x509.CertificateRevocationList, certificate: x509.Certificate,
               issuer: x509.Certificate, now: datetime) -> RevocationStatus:
    """A status from a CRL (RFC 5280 §6.3): only a CRL signed by the issuer and still
    current counts; otherwise the status is unknown."""
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        return RevocationStatus.UNKNOWN
    if crl.next_update_utc is not None and now >= crl.next_update_utc:
        return RevocationStatus.UNKNOWN
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    return RevocationStatus.GOOD if entry is None else RevocationStatus.REVOKED


def check_peer(own: x509.Certificate, peer_chain: Sequence[x509.Certificate],
               anchors: Sequence[x509.Certificate], revocation: RevocationSource,
               now: datetime) -> AuthorizedPeer:
    """Accept the peer or raise `PeerRejectedError` with the reason."""
    if not peer_chain:
        raise PeerRejectedError("no-certificate", "the peer presented no certificate")
    try:
        path = validate_chain(peer_chain[0], peer_chain[1:], anchors, now)
    except ChainError as exc:
        raise PeerRejectedError("untrusted", str(exc)) from exc
    for certificate, issuer in itertools.pairwise(path):
        status = revocation(certificate, issuer)
        if status is not RevocationStatus.GOOD:
            subject = certificate.subject.rfc4514_string()
            raise PeerRejectedError(status.value, f"{subject} is {status.value}")
    shared = certificate_domains(own) & certificate_domains(peer_chain[0])
    if not shared:
        raise PeerRejectedError(
            "other-domain", f"peer domains {sorted(certificate_domains(peer_chain[0]))} do not "
                            f"include ours {sorted(certificate_domains(own))}")
    return AuthorizedPeer(peer_chain[0], shared)
