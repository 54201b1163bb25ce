"""`iotpki serve`: the plain-HTTP listener for OCSP, CRLs and CA certificates (uvicorn)."""

from __future__ import annotations

import os

import typer
import uvicorn

from iotpki.cli.context import state

FACTORY = "iotpki.server:app_from_environment"


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    http_port: int = typer.Option(8080, "--http-port", help="Plain HTTP: OCSP, CRL, CA certs."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve OCSP (/ocsp/<ca>), CRLs (/crl/<ca>.crl, /crl/<ca>-delta.crl) and /ca/<ca>.crt."""
    cli = state(ctx)
    settings = cli.settings
    cli.pki().close()  # creates or migrates the schema once, before the workers start
    os.environ["IOTPKI_DATA_DIR"] = str(settings.data_dir)
    os.environ["IOTPKI_PUBLIC_URL"] = settings.public_url
    if settings.database_url:
        os.environ["IOTPKI_DATABASE_URL"] = settings.database_url
    if settings.allow_unencrypted_keys:
        os.environ["IOTPKI_INSECURE_UNENCRYPTED_KEYS"] = "1"
    # httptools: with uvicorn's h11 fallback, small keep-alive answers stall on delayed ACKs.
    uvicorn.run(FACTORY, factory=True, host=host, port=http_port, workers=workers,
                log_level=log_level, access_log=False, timeout_keep_alive=30, http="httptools")
