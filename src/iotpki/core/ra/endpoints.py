"""Protocol endpoints: a label in the URL (`/.well-known/est/<label>/`, `/.well-known/cmp/p/<label>`,
`/scep/<label>`, `/acme/<label>/directory`, `/cmc/<label>`) selects the authority, the profile
and the enrollment methods a request may use. An ACME endpoint names its challenge types instead (its
enrollment methods: http-01, dns-01, tls-alpn-01 prove control of a name, device-attest-01 the
previous-stage identity) and whether External Account Binding is required.

Declared in `<data-dir>/endpoints.yaml` (the packaged default matches `init --demo`); the
empty label is the endpoint without a label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.methods import ENROLLMENT_METHODS, MethodName, enrollment_method

PROTOCOLS = ("est", "cmp", "scep", "acme", "cmc")
ACME_CHALLENGES = ("http-01", "dns-01", "tls-alpn-01", "device-attest-01")
EAB_MODES = ("required", "optional")
# ACME resource names come right after /acme/: a label must not be one of them.
ACME_RESERVED = ("directory", "new-nonce", "new-account", "new-order", "revoke-cert",
                 "key-change", "renewal-info", "acct", "order", "authz", "chall", "cert")
METHODS = tuple(m.value for m in ENROLLMENT_METHODS)


@dataclass(frozen=True)
class Endpoint:
    protocol: str
    label: str
    authority: str
    profile: str
    methods: tuple[MethodName, ...]  # for a first enrollment, in the order they are tried
    renewal: MethodName = MethodName.CURRENT_CERTIFICATE  # EST simplereenroll, CMP kur
    # RFC 7030 §3.5: every request must carry the TLS channel binding in challengePassword.
    channel_binding: bool = False
    # RFC 8894 §3.5.2: SCEP clients that encrypt with DES or 3DES, or sign with SHA-1, are
    # served only where the operator allows them.
    legacy_algorithms: bool = False
    # ACME (RFC 8555): the challenge types offered, and External Account Binding (§7.3.4).
    challenges: tuple[str, ...] = ()
    eab: str = "optional"

    def __post_init__(self) -> None:
        if self.protocol == "acme":
            _check_acme(self)
        elif not self.methods:
            raise ConfigurationError(
                f"{self.protocol} endpoint {self.label!r}: methods must be some of {METHODS}")


class Endpoints:
    def __init__(self, endpoints: Mapping[tuple[str, str], Endpoint]) -> None:
        self._endpoints = dict(endpoints)

    def get(self, protocol: str, label: str = "") -> Endpoint:
        endpoint = self._endpoints.get((protocol, label))
        if endpoint is None:
            raise NotFoundError(f"no {protocol} endpoint labelled {label!r}")
        return endpoint

    def all(self, protocol: str | None = None) -> list[Endpoint]:
        return [e for (p, _), e in sorted(self._endpoints.items()) if protocol in (None, p)]


def parse_endpoints(document: Any) -> Endpoints:
    if document is None:
        return Endpoints({})
    if not isinstance(document, Mapping):
        raise ConfigurationError("endpoint file must be a mapping of protocol → label → endpoint")
    endpoints = {}
    for protocol, labels in document.items():
        if protocol not in PROTOCOLS or not isinstance(labels, Mapping):
            raise ConfigurationError(f"unknown protocol {protocol!r} in endpoint file")
        for label, spec in labels.items():
            try:
                if protocol == "acme":
                    endpoints[(protocol, str(label))] = _acme_endpoint(str(label), spec)
                    continue
                endpoints[(protocol, str(label))] = Endpoint(
                    protocol, str(label), str(spec["authority"]), str(spec["profile"]),
                    tuple(enrollment_method(str(m)) for m in spec["methods"]),
                    enrollment_method(str(spec.get("renewal", MethodName.CURRENT_CERTIFICATE))),
                    _flag(spec.get("channel_binding", False), protocol, str(label),
                          "channel_binding"),
                    _flag(spec.get("legacy_algorithms", False), protocol, str(label),
                          "legacy_algorithms"))
            except ValueError as exc:
                raise ConfigurationError(f"{protocol} endpoint {label!r}: {exc}; methods must "
                                         f"be some of {METHODS}") from exc
            except (KeyError, TypeError) as exc:
                raise ConfigurationError(f"{protocol} endpoint {label!r}: {exc}") from exc
    return Endpoints(endpoints)


def _flag(value: Any, protocol: str, label: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{protocol} endpoint {label!r}: {name} must be true or false")
    return value


def _acme_endpoint(label: str, spec: Any) -> Endpoint:
    challenges = spec.get("challenges", ["http-01"])
    if not isinstance(challenges, list):
        raise ConfigurationError(f"acme endpoint {label!r}: challenges must be a list")
    return Endpoint("acme", label, str(spec["authority"]), str(spec["profile"]), (),
                    challenges=tuple(str(c) for c in challenges),
                    eab=str(spec.get("eab", "optional")))


def _check_acme(endpoint: Endpoint) -> None:
    if endpoint.label in ACME_RESERVED or "/" in endpoint.label:
        raise ConfigurationError(f"acme endpoint label {endpoint.label!r} is a resource name")
    unknown = [c for c in endpoint.challenges if c not in ACME_CHALLENGES]
    if not endpoint.challenges or unknown:
        raise ConfigurationError(f"acme endpoint {endpoint.label!r}: challenges must be some "
                                 f"of {ACME_CHALLENGES}")
    if endpoint.eab not in EAB_MODES:
        raise ConfigurationError(f"acme endpoint {endpoint.label!r}: eab must be one of "
                                 f"{EAB_MODES}")
