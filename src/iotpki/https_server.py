"""The HTTPS listener (DESIGN.md §4): EST (RFC 7030) and the REST API (`/api/v1`, see
`iotpki.protocols.rest`), with iotpki terminating TLS itself.

- TLS 1.2 and 1.3 are offered (RFC 7030 §3.3.1 requires TLS 1.1 or later; some EST
  clients stop at 1.2).
- Client certificates are requested, not required (§3.3.2: a client may authenticate with
  HTTP Basic instead). Every hosted authority and trust anchor is in the verify store.
  Validity dates are not checked in the handshake, so that an expired certificate reaches
  the enrollment methods and gets an HTTP answer that says why (403), not a TLS alert.
- uvicorn does not pass the peer certificate to the application: `TLSHttpToolsProtocol`
  puts it into the scope as the ASGI TLS extension (`client_cert_chain`, PEM strings).
- The server certificate is issued from the `service` profile by the CA of the unlabelled
  EST endpoint (or read from configured files), before the worker processes start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from uvicorn.config import Config

from iotpki.app import PKI, build_pki
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
from iotpki.http_protocol import CanonicalHeadersProtocol
from iotpki.listener import QueryGuard
from iotpki.protocols.acme.accounts import ACMEAccounts
from iotpki.protocols.acme.certificates import ACMECertificates
from iotpki.protocols.acme.orders import ACMELimits, ACMEOrders
from iotpki.protocols.acme.routes import routes as acme_routes
from iotpki.protocols.acme.server import ACMEServer
from iotpki.protocols.acme.validation import HTTP01, ValidationSettings
from iotpki.protocols.est.routes import routes as est_routes
from iotpki.protocols.rest.app import create_api
from iotpki.protocols.rest.context import APIServices
from iotpki.settings import Settings
from iotpki.tls_exporter import tls_exporter
from iotpki.tls_guard import (
    ENV_MANAGED,
    CertificateGuard,
    check_interval,
    served_status,
    watch_certificate,
)
from iotpki.wire.chain import encode_pem_chain
from iotpki.wire.keys import generate_private_key, signature_hash_for

X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL: validity dates are checked by the core
RENEW_BEFORE = timedelta(days=30)
ENV_CERT, ENV_KEY, ENV_CLIENT_CAS = "IOTPKI_TLS_CERT", "IOTPKI_TLS_KEY", "IOTPKI_TLS_CLIENT_CAS"
ENV_TRUSTED_PROXIES = "IOTPKI_TRUSTED_PROXIES"  # read by Settings.from_environment
FACTORY = "iotpki.https_server:app_from_environment"
PROTOCOL_CLASS = "iotpki.https_server:TLSHttpToolsProtocol"


class TLSHttpToolsProtocol(CanonicalHeadersProtocol):
    """The guarded httptools protocol (`iotpki.listener`: timeouts, caps) with canonical
    header names (`iotpki.http_protocol`), plus the ASGI TLS extension in every request
    scope."""

    _tls: dict[object, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[object, object] | None:
    """The ASGI TLS extension's fields for one connection (Python's ssl gives the leaf only),
    plus the channel binding (RFC 7030 §3.5), our additions: `tls_unique` (RFC 5929) on
    TLS 1.2, `tls_exporter` (RFC 9266, `iotpki.tls_exporter`) on TLS 1.3, else None."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    version = ssl_object.version()
    unique = ssl_object.get_channel_binding("tls-unique") if version == "TLSv1.2" else None
    return {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "tls_version": version, "server_cert": None, "tls_unique": unique,
            "tls_exporter": tls_exporter(ssl_object)}


def tls_context(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`: files named by the environment `serve` prepared."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.environ[ENV_CERT], os.environ[ENV_KEY])
    context.load_verify_locations(cafile=os.environ[ENV_CLIENT_CAS])
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    if os.environ.get(ENV_MANAGED) == "1":  # ours: replaced when revoked (tls_guard)
        watch_certificate(context, os.environ[ENV_CERT], os.environ[ENV_KEY])
    return context


# -- server certificate and client CA store, prepared once by `iotpki serve` ---------------------

@dataclass(frozen=True)
class TLSFiles:
    certificate: Path
    key: Path
    client_cas: Path
    managed: bool = False  # issued here by `prepare_tls`, replaced when revoked

    def export(self) -> None:
        os.environ[ENV_CERT] = str(self.certificate)
        os.environ[ENV_KEY] = str(self.key)
        os.environ[ENV_CLIENT_CAS] = str(self.client_cas)
        os.environ[ENV_MANAGED] = "1" if self.managed else "0"


def prepare_tls(pki: PKI, hosts: Sequence[str], certificate: Path | None = None,
                key: Path | None = None) -> TLSFiles:
    directory = pki.settings.data_dir / "tls"
    directory.mkdir(mode=0o700, exist_ok=True)
    client_cas = directory / "client-cas.pem"
    client_cas.write_bytes(encode_pem_chain([a.certificate for a in pki.authorities.list()]))
    if certificate is not None and key is not None:
        return TLSFiles(certificate, key, client_cas)
    files = TLSFiles(directory / "server.pem", directory / "server.key", client_cas, True)
    if not _still_good(pki, files.certificate):
        _issue_server_certificate(pki, files, hosts)
    return files


def _still_good(pki: PKI, path: Path) -> bool:
    """Neither near its end nor revoked or held (an operator may have revoked it)."""
    if not path.exists():
        return False
    leaf, status = served_status(pki, path)
    if status is not None and status is not CertificateStatus.GOOD:
        return False
    return leaf.not_valid_after_utc - pki.clock.now() > RENEW_BEFORE


def _issue_server_certificate(pki: PKI, files: TLSFiles, hosts: Sequence[str]) -> None:
    authority = _server_authority(pki)
    key = generate_private_key("ec-p256")
    names = sorted({"localhost", "127.0.0.1", *hosts})
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), False)
           .sign(key, signature_hash_for(key)))
    outcome = pki.issuance.issue(IssuanceRequest(
        authority, "service", csr.public_bytes(serialization.Encoding.DER), "iotpki serve"))
    if not isinstance(outcome, Issued):
        raise RuntimeError(f"server certificate refused: {outcome}")
    # Key first, then certificate, each replaced whole: a worker reloading when the
    # certificate file changes finds the matching key already there (tls_guard).
    _replace_file(files.key, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _replace_file(files.certificate, encode_pem_chain([outcome.certificate, *outcome.chain[:-1]]))


def _replace_file(path: Path, content: bytes) -> None:
    temporary = path.with_name(path.name + ".new")
    descriptor = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as sink:
        sink.write(content)
    os.replace(temporary, path)


def start_certificate_guard() -> CertificateGuard | None:
    """In the HTTPS listener's parent process: replace our certificate once it is revoked."""
    if os.environ.get(ENV_MANAGED) != "1":
        return None
    pki = build_pki(Settings.from_environment(), migrate=False)
    files = TLSFiles(Path(os.environ[ENV_CERT]), Path(os.environ[ENV_KEY]),
                     Path(os.environ[ENV_CLIENT_CAS]), True)
    guard = CertificateGuard(pki, files.certificate,
                             lambda pki, names: _issue_server_certificate(pki, files, names),
                             check_interval())
    guard.start()
    return guard


def _server_authority(pki: PKI) -> str:
    """The CA of the unlabelled EST endpoint, else of the first one."""
    endpoints = {e.label: e for e in pki.endpoints.all("est")}
    chosen = endpoints.get("") or next(iter(endpoints.values()), None)
    if chosen is None:
        raise RuntimeError("no EST endpoint names a CA to issue the server certificate")
    return chosen.authority


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


# -- the application -----------------------------------------------------------------------------

def endpoint_enrollment(pki: PKI) -> EndpointEnrollment:
    return EndpointEnrollment(pki.database.unit_of_work, pki.endpoints, pki.enrollment,
                              pki.profiles, pki.clock, pki.key_delivery)


def api_services(pki: PKI) -> APIServices:
    return APIServices(
        principals=pki.principals, idempotency=pki.idempotency, authorities=pki.authorities,
        organizations=pki.organizations, profiles=pki.profiles, registrations=pki.registrations,
        manifests=pki.manifests, certificates=pki.certificates, revocation=pki.revocation,
        audit=pki.audit, devices=pki.devices, lifecycle=pki.lifecycle)


def acme_validation(settings: Settings) -> ValidationSettings:
    resolver = None
    if settings.acme_resolver:
        host, _, port = settings.acme_resolver.rpartition(":")
        resolver = (host or settings.acme_resolver, int(port or 53))
    return ValidationSettings(settings.acme_http_port, settings.acme_tls_port, resolver,
                              settings.acme_connect_address)


def acme_server(pki: PKI, validation: ValidationSettings | None = None) -> ACMEServer:
    """The ACME server (RFC 8555) with its resources and challenge validators."""
    settings = pki.settings
    uow = pki.database.unit_of_work
    validation = validation or acme_validation(settings)
    server = ACMEServer(uow, pki.endpoints, pki.clock)
    ACMEAccounts(server, uow, pki.acme_keys, pki.clock)
    ACMEOrders(server, uow, pki.issuance, {"http-01": HTTP01(validation)}, pki.clock,
               ACMELimits(settings.acme_orders_per_hour,
                          settings.acme_organization_orders_per_hour))
    ACMECertificates(server, uow, pki.certificates, pki.revocation, pki.clock)
    return server


def create_app(pki: PKI, proxies: Sequence[str] = ()) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pki.close()

    # EST first; everything else goes to the REST API (`/api/v1/...`, its own 404 problems).
    routes = [*est_routes(endpoint_enrollment(pki), proxies), *acme_routes(acme_server(pki)),
              Mount("", app=create_api(api_services(pki)))]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(QueryGuard)])


def app_from_environment() -> Starlette:
    """The uvicorn factory of the HTTPS listener (`iotpki serve --https-port`)."""
    settings = Settings.from_environment()
    return create_app(build_pki(settings, migrate=False), settings.trusted_proxies)
