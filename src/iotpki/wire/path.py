"""Path validation of presented chains with `cryptography.x509.verification` (RFC 5280 §6).

Never a home-made chain walker: the verifier is tested against x509-limbo. Our end-entity
extension policy accepts every profile (component certificates have no EKU, authorization
ones an empty subject); CA certificates get the Web PKI CA checks. Revocation is not
checked here: the server checks its store (`iotpki.core.ra.enrollment`), devices and services
a revocation source (`iotpki.wire.peer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509 import verification

from iotpki.wire.errors import PKIError


class ChainError(PKIError):
    """A chain that does not validate to any of the given trust anchors."""


def validate_chain(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate], now: datetime,
) -> list[x509.Certificate]:
    """The validated path, leaf first, anchor last; raise `ChainError` naming the reason."""
    if not anchors:
        raise ChainError("no trust anchor is configured for this identity")
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, list(intermediates)).chain)
    except verification.VerificationError as exc:
        raise ChainError(f"chain does not validate to a trusted anchor: {exc}") from exc
