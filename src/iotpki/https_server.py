"""The HTTPS listener (DESIGN.md §4): EST (RFC 7030) and the REST API (`/api/v1`, see
`iotpki.protocols.rest`), with iotpki terminating TLS itself.

- TLS 1.2 and 1.3 are offered (RFC 7030 §3.3.1 requires TLS 1.1 or later; some EST
  clients stop at 1.2).
- Client certificates are requested, not required (§3.3.2: a client may authenticate with
  HTTP Basic instead). Every hosted authority and trust anchor is in the verify store.
  Validity dates are not checked in the handshake, so that an expired certificate reaches
  the enrollment methods and gets an HTTP answer that says why (403), not a TLS alert.
- TLS 1.3 sessions get one ticket, not OpenSSL's two (RFC 8446 §4.6.1): a client that
  reconnects still resumes (and gets a ticket again), and a full handshake costs about
  0.15 ms of CPU less (OpenSSL 3.0, issue 21). A device renewing once per connection
  never resumes.
- uvicorn does not pass the peer certificate to the application: `TLSHttpToolsProtocol`
  puts it into the scope as the ASGI TLS extension (`client_cert_chain`, PEM strings).
- The server certificate is issued from the `service` profile by the CA of the unlabelled
  EST endpoint (or read from configured files), before the worker processes start; its
  files reach the workers in the handed-over settings (`Settings.tls`).
- The application itself is the composition root's (`app.https_app`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from uvicorn.config import Config

from iotpki.app import PKI, build_pki, https_app
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import ConfigurationError
from iotpki.core.outcomes import Issued
from iotpki.http_protocol import CanonicalHeadersProtocol
from iotpki.settings import Settings, TLSFiles, worker_settings
from iotpki.tls_exporter import tls_exporter
from iotpki.tls_guard import CertificateGuard, served_status, watch_certificate
from iotpki.wire.chain import encode_pem_chain
from iotpki.wire.keys import generate_private_key, signature_hash_for

X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL: validity dates are checked by the core
TLS13_TICKETS = 1  # session tickets after a full TLS 1.3 handshake (module docstring)
RENEW_BEFORE = timedelta(days=30)
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
    """uvicorn's `ssl_context_factory`: the files `serve` prepared (`Settings.tls`)."""
    settings = worker_settings()
    files = settings.tls
    if files is None:
        raise ConfigurationError("the HTTPS listener was started without its TLS files")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.certificate, files.key)
    context.load_verify_locations(cafile=files.client_cas)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    context.num_tickets = TLS13_TICKETS
    if files.managed:  # ours: replaced when revoked (tls_guard)
        watch_certificate(context, files, settings.tls_check_seconds)
    return context


# -- server certificate and client CA store, prepared once by `iotpki serve` ---------------------

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


def start_certificate_guard(settings: Settings) -> CertificateGuard | None:
    """In the HTTPS listener's parent process: replace our certificate once it is revoked."""
    files = settings.tls
    if files is None or not files.managed:
        return None
    pki = build_pki(settings, migrate=False)
    guard = CertificateGuard(pki, files.certificate,
                             lambda pki, names: _issue_server_certificate(pki, files, names),
                             settings.tls_check_seconds)
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

def app_from_environment() -> Starlette:
    """The uvicorn factory of the HTTPS listener (`iotpki serve --https-port`): the
    handed-over settings (`worker_settings`)."""
    return https_app(build_pki(worker_settings(), migrate=False, group_commit=True))
