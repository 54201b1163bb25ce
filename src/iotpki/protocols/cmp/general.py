"""General messages of the Lightweight CMP profile (RFC 9483 §4.3; RFC 9810 §5.3.19):
what a CA answers to a genm, and under which info type.

- §4.3.1 caCerts (no value in the request; one with a value is badRequest): the CA chain.
- §4.3.2 rootCaCert (the requester's root, optional) is answered with rootCaKeyUpdate,
  absent while the root has no new key.
- §4.3.3 certReqTemplate: the key algorithm the profile asks for.
- §4.3.4 crlStatusList is answered with crls (the authority's current full CRL);
  currentCRL (RFC 9810 §5.3.19.6) with the same CRL.
- RFC 9810 §5.3.19.2 signKeyPairTypes: the key algorithms the endpoint's profile accepts.
Other info types are echoed with an empty value.
"""

from __future__ import annotations

from collections.abc import Callable

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.profile import Profile
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.status import CRLKind
from iotpki.protocols.cmp.refusals import CMPFailure
from iotpki.wire.cmp.responses import algorithm_identifier, ca_certs_value, cert_req_template_value
from iotpki.wire.der import SEQUENCE, tlv

SIGN_KEY_PAIR_TYPES = "1.3.6.1.5.5.7.4.2"
CURRENT_CRL = "1.3.6.1.5.5.7.4.6"
CA_CERTS = "1.3.6.1.5.5.7.4.17"
ROOT_CA_KEY_UPDATE = "1.3.6.1.5.5.7.4.18"
CERT_REQ_TEMPLATE = "1.3.6.1.5.5.7.4.19"
ROOT_CA_CERT = "1.3.6.1.5.5.7.4.20"
CRL_STATUS_LIST = "1.3.6.1.5.5.7.4.22"
CRLS = "1.3.6.1.5.5.7.4.23"
# The info type of the answer where it is not the request's (RFC 9483 §4.3.2, §4.3.4).
ANSWERED_AS = {ROOT_CA_CERT: ROOT_CA_KEY_UPDATE, CRL_STATUS_LIST: CRLS}
# Requests that carry no value (RFC 9483 §4.3.1, §4.3.3: infoValue absent).
_NO_VALUE = frozenset({CA_CERTS, CERT_REQ_TEMPLATE, SIGN_KEY_PAIR_TYPES, CURRENT_CRL})

# The key algorithm of each key type, as an AlgorithmIdentifier (algorithm OID, DER of the
# parameters): id-ecPublicKey with the named curve (RFC 5480), id-Ed25519 (RFC 8410),
# rsaEncryption (RFC 8017).
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
               profile: Profile | None, values: tuple[bytes | None, ...] = (),
               ) -> list[tuple[str, bytes | None]]:
        """(info type, DER value or None) per requested info type; `CMPFailure` for a
        request the profile forbids."""
        for info_type, value in zip(info_types, values, strict=False):
            if info_type in _NO_VALUE and value is not None:
                raise CMPFailure("badRequest", f"RFC 9483 §4.3: a genm for {info_type} "
                                               f"carries no value")
        handlers: dict[str, Callable[[], bytes | None]] = {
            CA_CERTS: lambda: ca_certs_value(authority.full_chain),
            ROOT_CA_CERT: lambda: None,  # no new root key: rootCaKeyUpdate absent (§4.3.2)
            ROOT_CA_KEY_UPDATE: lambda: None,
            CERT_REQ_TEMPLATE: lambda: _template(profile),
            CURRENT_CRL: lambda: self._current_crl(authority.label),
            CRL_STATUS_LIST: lambda: tlv(SEQUENCE, self._current_crl(authority.label)),
            SIGN_KEY_PAIR_TYPES: lambda: _key_pair_types(profile),
        }
        return [(ANSWERED_AS.get(t, t), handlers[t]() if t in handlers else None)
                for t in info_types]

    def _current_crl(self, authority: str) -> bytes:
        published = self._crls.latest(authority, CRLKind.FULL)
        if published is None:
            published = self._crls.publish(authority, [CRLKind.FULL])[0]
        return published.der


def _template(profile: Profile | None) -> bytes | None:
    if profile is None:
        return None
    key = next((_KEY_ALGORITHMS[k] for k in profile.key_types if k in _KEY_ALGORITHMS), None)
    return cert_req_template_value(None, key)


def _key_pair_types(profile: Profile | None) -> bytes | None:
    """SignKeyPairTypesValue: SEQUENCE OF AlgorithmIdentifier, each once."""
    if profile is None:
        return None
    algorithms = dict.fromkeys(_KEY_ALGORITHMS[k] for k in profile.key_types
                               if k in _KEY_ALGORITHMS)
    return tlv(SEQUENCE, b"".join(algorithm_identifier(*a) for a in algorithms))
