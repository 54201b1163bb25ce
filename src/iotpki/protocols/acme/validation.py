"""How the server checks a challenge (RFC 8555 §8): the port the order flow calls, and the
http-01 validator (§8.3). dns-01 and tls-alpn-01 are in `dns01.py` and `tls_alpn.py`.

Validation happens from this node to the identifier: in tests and labs the port, the
resolver and the address to connect to are configurable (docs/acme.md, "Challenge
configuration"); in production the defaults (80, 443, the system resolver) apply.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from iotpki.core.errors import RefusalReason
from iotpki.wire.acme.messages import Identifier

MAX_BODY = 8192
TIMEOUT = 10.0


class ChallengeFailed(Exception):
    """The challenge was not met; `kind` is the ACME problem type (§8: `incorrectResponse`,
    `connection`, `dns`, `tls`, `unauthorized`, `badAttestationStatement`)."""

    def __init__(self, kind: str, detail: str, reason: RefusalReason | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.reason = reason or RefusalReason.POSSESSION_NOT_PROVEN


@dataclass(frozen=True)
class ChallengeInput:
    type: str
    identifier: Identifier
    token: str
    key_authorization: str  # RFC 8555 §8.1
    payload: Mapping[str, Any] = field(default_factory=dict)  # the client's response object
    account_organization: str | None = None
    authority: str | None = None  # the endpoint's
    profile: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What a validator keeps for finalize: device-attest-01's attested chain (DER, leaf
    first) and the enrollment method that accepted it, which finalize enrolls with."""

    chain: tuple[bytes, ...]
    method: str


# A validator raises ChallengeFailed, or returns the evidence to keep (device-attest-01).
Validator = Callable[[ChallengeInput], Evidence | None]


@dataclass(frozen=True)
class ValidationSettings:
    http_port: int = 80
    tls_port: int = 443
    resolver: tuple[str, int] | None = None  # a DNS server; None: the system's
    connect_address: str | None = None  # lab/test: connect here instead of resolving the name
    timeout: float = TIMEOUT


class HTTP01:
    """RFC 8555 §8.3: GET http://<name>:<port>/.well-known/acme-challenge/<token> answers the
    key authorization. Redirects are not followed (a deviation, docs/acme.md)."""

    def __init__(self, settings: ValidationSettings,
                 resolve: Callable[[str], str] | None = None) -> None:
        self._settings = settings
        self._resolve = resolve or system_address

    def __call__(self, challenge: ChallengeInput) -> None:
        name = challenge.identifier.value
        address = self._settings.connect_address or self._resolve(name)
        connection = http.client.HTTPConnection(address, self._settings.http_port,
                                                timeout=self._settings.timeout)
        try:
            connection.request("GET", f"/.well-known/acme-challenge/{challenge.token}",
                               headers={"Host": name, "User-Agent": "iotpki-acme-validator"})
            response = connection.getresponse()
            body = response.read(MAX_BODY + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise ChallengeFailed("connection", f"http-01: cannot fetch from {name} "
                                                f"port {self._settings.http_port}: {exc}") from exc
        finally:
            connection.close()
        if response.status != 200:
            raise ChallengeFailed("incorrectResponse",
                                  f"http-01: {name} answered HTTP {response.status}")
        # §8.3: the body is the key authorization; trailing whitespace is tolerated.
        if len(body) > MAX_BODY or body.strip() != challenge.key_authorization.encode():
            raise ChallengeFailed("incorrectResponse",
                                  f"http-01: {name} did not answer the key authorization")


def system_address(name: str) -> str:
    """The first address the system resolver gives for `name`."""
    try:
        return socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)[0][4][0]  # type: ignore[return-value]
    except OSError as exc:
        raise ChallengeFailed("dns", f"cannot resolve {name}: {exc}") from exc
