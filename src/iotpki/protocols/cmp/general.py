"""General messages of the Lightweight CMP profile (RFC 9483 §4.3): what a CA answers to a
genm for CA certificates (§4.3.1), a root CA key update (§4.3.2), a certificate request
template (§4.3.3) and the current CRL (§4.3.4). Other info types get an empty answer."""

from __future__ import annotations

from collections.abc import Callable

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.profile import Profile
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.status import CRLKind
from iotpki.wire.cmp.responses import ca_certs_value, cert_req_template_value

CA_CERTS = "1.3.6.1.5.5.7.4.17"
ROOT_CA_KEY_UPDATE = "1.3.6.1.5.5.7.4.18"
CERT_REQ_TEMPLATE = "1.3.6.1.5.5.7.4.19"
CURRENT_CRL = "1.3.6.1.5.5.7.4.6"

# RFC 9483 §4.3.3: the key algorithm a profile asks for, as an AlgorithmIdentifier
# (algorithm OID, DER of the parameters): id-ecPublicKey with the named curve (RFC 5480),
# id-Ed25519 (RFC 8410), rsaEncryption (RFC 8017).
_KEY_ALGORITHMS: dict[str, tuple[str, bytes | None]] = {
    "ec-p256": ("1.2.840.10045.2.1", bytes.fromhex("06082a8648ce3d030107")),
    "ec-p384": ("1.2.840.10045.2.1", bytes.fromhex("06052b81040022")),
    "ed25519": ("1.3.101.112", None),
    "rsa-2048": ("1.2.840.113549.1.1.1", bytes.fromhex("0500")),
    "rsa-3072": ("1.2.840.113549.1.1.1", bytes.fromhex("0500")),
    "rsa-4096": ("1.2.840.113549.1.1.1", bytes.fromhex("0500")),
}


class GeneralMessages:
    def __init__(self, crls: CRLPublisher) -> None:
        self._crls = crls

    def answer(self, info_types: tuple[str, ...], authority: Authority,
               profile: Profile | None) -> list[tuple[str, bytes | None]]:
        handlers: dict[str, Callable[[], bytes | None]] = {
            CA_CERTS: lambda: ca_certs_value(authority.full_chain),
            ROOT_CA_KEY_UPDATE: lambda: None,  # no new root key: the empty answer (§4.3.2)
            CERT_REQ_TEMPLATE: lambda: _template(profile),
            CURRENT_CRL: lambda: self._current_crl(authority.label),
        }
        return [(t, handlers[t]() if t in handlers else None) for t in info_types]

    def _current_crl(self, authority: str) -> bytes | None:
        published = self._crls.latest(authority, CRLKind.FULL)
        if published is None:
            published = self._crls.publish(authority, [CRLKind.FULL])[0]
        return published.der


def _template(profile: Profile | None) -> bytes | None:
    if profile is None:
        return None
    key = next((_KEY_ALGORITHMS[k] for k in profile.key_types if k in _KEY_ALGORITHMS), None)
    return cert_req_template_value(None, key)

