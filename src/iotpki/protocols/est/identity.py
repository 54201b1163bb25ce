"""Who is asking: the TLS client certificate (RFC 7030 §3.3.2) or HTTP Basic credentials
(§3.2.3), as the request carries them.

The TLS certificate comes from the ASGI TLS extension (`scope["extensions"]["tls"]
["client_cert_chain"]`, PEM strings) that our HTTPS listener fills in, or, behind a
reverse proxy that terminates TLS, from a header (nginx `$ssl_client_escaped_cert`) that
is believed only when the connection comes from a configured trusted proxy address.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from starlette.requests import Request

from iotpki.core.audit.bounds import bounded
from iotpki.protocols.tls_client import client_certificate

PROXY_CERT_HEADER = "x-ssl-client-cert"
USERNAME_LIMIT = 128  # characters of a Basic user name kept (registration ids are 32)
PASSWORD_LIMIT = 1024


class CredentialsError(Exception):
    """Credentials present but unreadable (malformed Authorization or certificate header)."""


@dataclass(frozen=True)
class ClientIdentity:
    certificate: x509.Certificate | None
    username: str | None
    password: str | None
    address: str

    @property
    def requester(self) -> str:
        if self.username is not None:  # bounded: it is stored in VARCHAR(255) columns
            return bounded(f"est:{self.username}@{self.address}", USERNAME_LIMIT)
        if self.certificate is not None:
            return f"est:{self.certificate.subject.rfc4514_string()}@{self.address}"
        return f"est:{self.address}"


def client_identity(request: Request, trusted_proxies: Collection[str]) -> ClientIdentity:
    address = request.client.host if request.client else "-"
    certificate = client_certificate(request.scope)
    if certificate is None and address in trusted_proxies:
        certificate = _proxy_certificate(request)
    username, password = _basic(request)
    return ClientIdentity(certificate, username, password, address)


def _proxy_certificate(request: Request) -> x509.Certificate | None:
    value = request.headers.get(PROXY_CERT_HEADER, "").strip()
    if not value:
        return None
    try:
        return x509.load_pem_x509_certificate(unquote(value).encode())
    except ValueError as exc:
        raise CredentialsError(f"unreadable {PROXY_CERT_HEADER} header: {exc}") from exc


def _basic(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization")
    if header is None:
        return None, None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise CredentialsError(f"unsupported authorization scheme {scheme!r}: use Basic")
    try:
        username, colon, password = base64.b64decode(encoded.strip(), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, ValueError) as exc:
        raise CredentialsError(f"malformed Basic credentials: {exc}") from exc
    if not colon:
        raise CredentialsError("malformed Basic credentials: no ':' between user and password")
    # The user name names a registration and goes into the audit log; neither is long.
    return bounded(username, USERNAME_LIMIT), bounded(password, PASSWORD_LIMIT)
