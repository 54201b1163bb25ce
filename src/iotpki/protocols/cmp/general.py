"""General messages of the Lightweight CMP profile (RFC 9483 §4.3; RFC 9810 §5.3.19):
what a CA answers to a genm, and under which info type.

- §4.3.1 caCerts (no value in the request; one with a value is badRequest): the CA chain.
- §4.3.2 rootCaCert (the requester's root, optional) is answered with rootCaKeyUpdate,
  absent while the root has no new key.
- §4.3.3 certReqTemplate: the key algorithm the profile asks for.
- §4.3.4 crlStatusList (one CRLStatus or more; a request without is badRequest) is
  answered with crls: per CRLStatus, the newest CRL at its source (a dpn fullName URI of
  ours: the CA's CRL, a CRL shard's (RFC 5280 §5.2.5) or a delta CRL; an issuer name:
  the CA's own full CRL), left out where the client's thisUpdate is not older; infoValue
  absent when no CRL is newer. A source that is not this endpoint's CA is badRequest.
  currentCRL (RFC 9810 §5.3.19.6) is the CA's own newest full CRL.
- RFC 9810 §5.3.19.2 signKeyPairTypes: the key algorithms the endpoint's profile accepts.
Other info types are echoed with an empty value.
"""

from __future__ import annotations

from collections.abc import Callable

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.profile import Profile
from iotpki.core.ca.urls import PublicURLs
from iotpki.core.errors import NotFoundError
from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.crl_distribution import CRLDistribution
from iotpki.core.revocation.status import CRLKind, PublishedCRL
from iotpki.protocols.cmp.refusals import CMPFailure
from iotpki.wire.cmp.crl_status import CRLStatus, decode_crl_status_list
from iotpki.wire.cmp.responses import algorithm_identifier, ca_certs_value, cert_req_template_value
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.errors import DecodeError

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
    def __init__(self, crls: CRLPublisher, distribution: CRLDistribution,
                 urls: PublicURLs) -> None:
        self._crls = crls
        self._distribution = distribution
        self._urls = urls

    def answer(self, info_types: tuple[str, ...], authority: Authority,
               profile: Profile | None, values: tuple[bytes | None, ...] = (),
               ) -> list[tuple[str, bytes | None]]:
        """(info type, DER value or None) per requested info type; `CMPFailure` for a
        request the profile forbids."""
        for info_type, value in zip(info_types, values, strict=False):
            if info_type in _NO_VALUE and value is not None:
                raise CMPFailure("badRequest", f"RFC 9483 §4.3: a genm for {info_type} "
                                               f"carries no value")
        requested = dict(zip(info_types, values, strict=False))
        handlers: dict[str, Callable[[], bytes | None]] = {
            CA_CERTS: lambda: ca_certs_value(authority.full_chain),
            ROOT_CA_CERT: lambda: None,  # no new root key: rootCaKeyUpdate absent (§4.3.2)
            ROOT_CA_KEY_UPDATE: lambda: None,
            CERT_REQ_TEMPLATE: lambda: _template(profile),
            CURRENT_CRL: lambda: self._current_crl(authority.label),
            CRL_STATUS_LIST: lambda: self._crl_update(authority, requested.get(CRL_STATUS_LIST)),
            SIGN_KEY_PAIR_TYPES: lambda: _key_pair_types(profile),
        }
        return [(ANSWERED_AS.get(t, t), handlers[t]() if t in handlers else None)
                for t in info_types]

    def _current_crl(self, authority: str) -> bytes:
        published = self._crls.latest(authority, CRLKind.FULL)
        if published is None:
            published = self._crls.publish(authority, [CRLKind.FULL])[0]
        return published.der

    def _crl_update(self, authority: Authority, value: bytes | None) -> bytes | None:
        """RFC 9483 §4.3.4: the CRLs newer than the client's, None when it is up to date."""
        if value is None:
            raise CMPFailure("badRequest", "RFC 9483 §4.3.4: a crlStatusList genm carries "
                                           "one CRLStatus or more")
        try:
            statuses = decode_crl_status_list(value)
        except DecodeError as exc:
            raise CMPFailure("badRequest", str(exc)) from exc
        newer: dict[bytes, None] = {}  # each CRL once, in the order asked
        for status in statuses:
            crl = self._at_source(authority, status)
            issued = crl.info.this_update.replace(microsecond=0)  # as the CRL's DER says
            if status.this_update is None or status.this_update < issued:
                newer[crl.der] = None
        return tlv(SEQUENCE, b"".join(newer)) if newer else None

    def _at_source(self, authority: Authority, status: CRLStatus) -> PublishedCRL:
        name = self._scope_name(authority, status)
        try:
            return self._distribution.current(name)
        except NotFoundError as exc:
            raise CMPFailure("badRequest", f"no CRL at the requested source: {exc}") from exc

    def _scope_name(self, authority: Authority, status: CRLStatus) -> str:
        """The CRL scope (`/crl/<name>.crl`) a CRLSource names, if it is this CA's."""
        subject = authority.certificate.subject.public_bytes()
        if subject in status.issuers:
            return authority.label
        for uri in status.uris:
            for base in (self._urls.base, *self._urls.previous):
                name = uri.removeprefix(f"{base}/crl/")
                if name != uri and name.endswith(".crl") and _names_ca(name, authority.label):
                    return name.removesuffix(".crl")
        raise CMPFailure("badRequest", "RFC 9483 §4.3.4: the CRLSource names no CRL of this "
                                       "endpoint's CA (its issuer name or one of its CRL "
                                       "distribution point URIs)")


def _names_ca(name: str, label: str) -> bool:
    scope = name.removesuffix(".crl").removesuffix("-delta")
    return scope == label or scope.startswith(f"{label}.")


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
