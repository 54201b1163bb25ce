"""Trust anchors pinned by fingerprint.

The device is configured with the SHA-256 fingerprints of the root certificates it may
trust (out of band, as RFC 7030 §4.1.1 asks for a bootstrap). A root the server sends
(EST cacerts, CMP caPubs or extraCerts) is accepted only if its fingerprint is pinned;
everything else (the TLS server, CMP protection certificates, issued chains) must
validate to an accepted root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.agent.errors import UntrustedAnswerError
from iotpki.wire.path import ChainError, validate_chain


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """`AB:CD:...` or `abcd...` → lower-case hex without separators."""
    cleaned = text.replace(":", "").replace(" ", "").lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ValueError(f"not a SHA-256 fingerprint: {text!r}")
    return cleaned


def is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True


class Trust:
    """The pinned fingerprints and the anchors accepted so far."""

    def __init__(self, pins: Iterable[str], anchors: Sequence[x509.Certificate] = ()) -> None:
        self.pins = frozenset(normalize_fingerprint(p) for p in pins)
        self.anchors: list[x509.Certificate] = [
            a for a in anchors if certificate_fingerprint(a) in self.pins]

    def accept(self, certificates: Iterable[x509.Certificate]) -> list[x509.Certificate]:
        """Add the pinned roots among `certificates`; return the ones that were new."""
        new = [c for c in certificates if is_self_signed(c)
               and certificate_fingerprint(c) in self.pins and c not in self.anchors]
        self.anchors.extend(new)
        return new

    def path(self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
             now: datetime) -> list[x509.Certificate]:
        """The validated path leaf → anchor, or `UntrustedAnswerError`."""
        try:
            return validate_chain(leaf, intermediates, self.anchors, now)
        except ChainError as exc:
            raise UntrustedAnswerError(f"{leaf.subject.rfc4514_string()}: {exc}") from exc

    def pem(self) -> bytes:
        return b"".join(a.public_bytes(serialization.Encoding.PEM) for a in self.anchors)
