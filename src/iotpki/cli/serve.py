"""`iotpki serve`: the plain-HTTP listener for OCSP, CRLs and CA certificates, and with
`--https-port` the HTTPS listener for EST (RFC 7030), ACME (RFC 8555) and the REST API, each
under uvicorn."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
import uvicorn
from sqlalchemy.engine import make_url

from iotpki.app import PKI
from iotpki.cli.context import state
from iotpki.cli.output import errors
from iotpki.core.errors import ConfigurationError
from iotpki.http_protocol import PROTOCOL_CLASS as HTTP_PROTOCOL
from iotpki.https_server import FACTORY as HTTPS_FACTORY
from iotpki.https_server import (
    PROTOCOL_CLASS,
    prepare_tls,
    start_certificate_guard,
    tls_context,
)
from iotpki.keys.errors import KeyProtectionError
from iotpki.listener import hold_port, reuseport_supported, serve_workers
from iotpki.server import FACTORY
from iotpki.settings import Settings
from iotpki.store.database import sqlite_url

# uvicorn restarts a worker that has not answered its health check in time; on a loaded
# machine importing and building the PKI takes longer than uvicorn's default 5 s.
HEALTHCHECK_SECONDS = 60


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    http_port: int = typer.Option(8080, "--http-port", help="Plain HTTP: OCSP, CRL, CA certs."),
    https_port: int = typer.Option(None, "--https-port",
                                   help="HTTPS: EST, ACME and the REST API (e.g. 8443); off when "
                                        "not given."),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="Server certificate chain (PEM); "
                                  "default: issued from the 'service' profile."),
    tls_key: Path = typer.Option(None, "--tls-key", help="Server private key (PEM)."),
    trusted_proxy: list[str] = typer.Option(
        [], "--trusted-proxy", help="Reverse-proxy address whose X-SSL-Client-Cert header is "
                                    "believed (repeatable)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes per listener."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve OCSP, CRLs, CMP, SCEP and CMC over HTTP and, with --https-port, EST, ACME and the
    REST API.

    HTTP: OCSP (/ocsp/<ca>), CRLs (/crl/<ca>.crl, /crl/<ca>-delta.crl), /ca/<ca>.crt, CMP
    (/.well-known/cmp), SCEP (/scep and /scep/<label>), CMC (/cmc and /cmc/<label>). HTTPS:
    EST (/.well-known/est/... and /.well-known/est/<label>/..., Full PKI Requests at
    .../fullcmc), ACME (/acme/directory and /acme/<label>/directory) and the REST API
    (/api/v1/..., OpenAPI at /api/v1/openapi.json)."""
    cli = state(ctx)
    settings = cli.settings
    if trusted_proxy:  # the options replace IOTPKI_TRUSTED_PROXIES
        settings = settings.with_trusted_proxies(trusted_proxy)
    pki = cli.pki()  # creates or migrates the schema once, before the workers start
    try:
        check_keys(pki)
        # The public URL changed since the CRLs were published: replace them now
        # (RFC 5280 §5.2.5 scope), before anyone fetches one from the new CDP.
        republished = pki.crls.republish_out_of_scope()
        tls = prepare_tls(pki, [host], tls_cert, tls_key) if https_port else None
    finally:
        pki.close()
    settings = dataclasses.replace(settings, tls=tls)
    listeners = [("http", http_port)] + ([("https", https_port)] if https_port else [])
    # Several workers: one SO_REUSEPORT socket per worker (iotpki.listener), the ports held
    # by this process meanwhile so that no other program (a second serve) shares them.
    spread = workers > 1 and reuseport_supported()
    held = check_ports(host, listeners, hold=spread)
    announce(settings, host, listeners, republished)
    settings.export()  # every listener process (and uvicorn's workers) runs with these
    https = None
    if tls is not None:
        https = multiprocessing.get_context("spawn").Process(
            target=run_https, args=(settings, host, https_port, workers, log_level, spread),
            name="iotpki-https")
        https.start()
    if https is not None:
        _stop_when_gone(https)
    try:
        run_http(host, http_port, workers, log_level, spread)
    finally:
        for holder in held:
            holder.close()
        if https is not None:
            failed = https.exitcode not in (None, 0)
            https.terminate()
            https.join(timeout=15)
            if failed:  # EST and the REST API are gone: so is the service
                raise ConfigurationError(f"the HTTPS listener on {host}:{https_port} stopped "
                                         f"(exit code {https.exitcode}); see its log above")


def check_ports(host: str, listeners: list[tuple[str, int]],
                hold: bool = False) -> list[socket.socket]:
    """Each port can be bound now: a busy port ends `serve` with one line and exit 1,
    instead of serving HTTP without HTTPS (EST and the REST API gone).

    The probe binds without SO_REUSEPORT, so a port another program listens on with
    SO_REUSEPORT (a second `iotpki serve` with several workers) is busy too. With `hold`,
    each port is then held (`listener.hold_port`) until `serve` ends: the workers' own
    SO_REUSEPORT sockets bind beside the holder, another program's probe or bind does not.
    Between probe and hold is one system call: the only window a racing start can use."""
    held: list[socket.socket] = []
    try:
        for scheme, port in listeners:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
                if hold:
                    held.append(hold_port(host, port))
            except OSError as exc:
                raise ConfigurationError(f"cannot listen on {host}:{port} ({scheme}): "
                                         f"{exc.strerror or exc}") from exc
    except BaseException:
        for holder in held:
            holder.close()
        raise
    return held


def announce(settings: Settings, host: str, listeners: list[tuple[str, int]],
             republished: Sequence[str] = ()) -> None:
    """What listens where, on stdout, before the servers start."""
    url = settings.database_url or sqlite_url(settings.data_dir)
    database = make_url(url).render_as_string(hide_password=True)
    lines = [f"iotpki serve: data directory {settings.data_dir}, database {database}"]
    for scheme, port in listeners:
        lines.append(f"  {scheme}://{host}:{port}  {SERVICES[scheme]}")
    lines.append(f"  public URL in certificates: {settings.public_url}")
    if republished:
        lines.append(f"  CRLs republished for this public URL: {', '.join(republished)}")
    print("\n".join(lines), flush=True)
    mismatch = public_url_mismatch(settings.public_url, host, dict(listeners).get("http"))
    if mismatch:
        errors.print(f"[yellow]warning:[/] {mismatch}", highlight=False)


def public_url_mismatch(public_url: str, host: str, http_port: int | None) -> str | None:
    """Why the URL certificates name (CRL, OCSP, caIssuers) may not reach this server's
    HTTP listener, or None. A reverse proxy may map one to the other: a warning only."""
    url = urlsplit(public_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    wildcard = host in ("0.0.0.0", "::", "")
    local = {"127.0.0.1", "localhost", "::1"}
    same_host = wildcard or url.hostname == host or {url.hostname, host} <= local
    if url.scheme == "http" and port == http_port and same_host:
        return None
    return (f"certificates name {public_url} for CRLs and OCSP, but HTTP listens on "
            f"{host}:{http_port}; set the address relying parties reach with 'iotpki config "
            "set public-url URL', unless a proxy forwards it here")


SERVICES = {
    "http": "OCSP /ocsp/<ca>, CRLs /crl/<ca>.crl, CA certificates /ca/<ca>.crt, "
            "CMP /.well-known/cmp, SCEP /scep, CMC /cmc, /healthz, /readyz",
    "https": "EST /.well-known/est (and .../fullcmc), REST API /api/v1 (docs /api/v1/docs)",
}


def _stop_when_gone(child: BaseProcess) -> None:
    """If the HTTPS listener ends (its port taken meanwhile, a crash), stop the HTTP
    listener too, so that `serve` exits non-zero rather than serve half the service."""

    def watch() -> None:
        child.join()
        if child.exitcode not in (0, -signal.SIGTERM):
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="https-watch", daemon=True).start()


def check_keys(pki: PKI) -> None:
    """Every authority key loads now: a file key decrypts with the configured passphrase, a
    token key is found (module, token, PIN, key label). A problem ends `serve` at startup
    with one line instead of failing every signing request later."""
    for authority in pki.authorities.list():
        if authority.key_ref is None:  # a trust anchor: no key here
            continue
        try:
            pki.keys.load(authority.key_ref)
        except KeyProtectionError as exc:
            raise ConfigurationError(
                f"the key of authority {authority.label} cannot be used ({exc}); check "
                "IOTPKI_CA_PASSPHRASE / IOTPKI_CA_PASSPHRASE_FILE") from exc


def _end_with_parent(parent: int) -> None:
    """The HTTPS listener stops when `serve` is gone, even if `serve` was killed outright."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_listener(app: str, host: str, port: int, spread: bool, **options: Any) -> None:
    """uvicorn on one port: with `spread`, each worker on its own SO_REUSEPORT socket
    (`listener.serve_workers`), else uvicorn's own (one socket shared by the workers).

    X-Forwarded-For and X-Forwarded-Proto are never believed: uvicorn would by default take
    them from any process on 127.0.0.1 and rewrite the client address, which EST's trusted
    proxy check (a forwarded client certificate), the per-client connection caps and the
    secret-guessing limits are keyed on (docs/security.md)."""
    options["proxy_headers"] = False
    if spread:
        serve_workers(app, host, port, **options)
    else:
        uvicorn.run(app, host=host, port=port, **options)


def run_http(host: str, port: int, workers: int, log_level: str, spread: bool = False) -> None:
    # httptools: with uvicorn's h11 fallback, small keep-alive answers stall on delayed ACKs;
    # guarded with read timeouts and connection caps (iotpki.listener).
    run_listener(FACTORY, host, port, spread, factory=True, workers=workers,
                 log_level=log_level, access_log=False, timeout_keep_alive=30,
                 http=HTTP_PROTOCOL, timeout_worker_healthcheck=HEALTHCHECK_SECONDS)


def run_https(settings: Settings, host: str, port: int, workers: int, log_level: str,
              spread: bool = False) -> None:
    _end_with_parent(os.getppid())
    # multiprocessing gave this process a stdin on a descriptor its own children do not
    # inherit; uvicorn's worker processes reopen the parent's stdin descriptor, so make it 0.
    os.dup2(sys.stdin.fileno(), 0)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as we do
    start_certificate_guard(settings)  # a revoked HTTPS certificate is replaced at once
    run_listener(HTTPS_FACTORY, host, port, spread, factory=True, workers=workers,
                 log_level=log_level, access_log=False, timeout_keep_alive=30,
                 http=PROTOCOL_CLASS, ssl_context_factory=tls_context,
                 timeout_worker_healthcheck=HEALTHCHECK_SECONDS)
