"""Entry point of the `iotpki` command: global options, `init`, and the sub-command groups."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from iotpki.app import install_default_profiles
from iotpki.cli import (
    audit,
    authority,
    cert,
    crl,
    device,
    fleet,
    manifest,
    org,
    principal,
    profile,
    registration,
    request,
    webhook,
)
from iotpki.cli.context import CLIState, state
from iotpki.cli.demo import demo
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.cli.output import JSON_OPTION, console, emit_json, errors
from iotpki.cli.serve import serve
from iotpki.keys.passphrase import create_passphrase_file, read_passphrase
from iotpki.wire.errors import DecodeError, PKIError

app = typer.Typer(
    name="iotpki", no_args_is_help=True, pretty_exceptions_enable=False,
    help="Certificate lifecycle manager for IoT devices: CA, RA and supply-chain identities.",
)
app.add_typer(authority.app, name="authority")
app.add_typer(cert.app, name="cert")
app.add_typer(audit.app, name="audit")
app.add_typer(profile.app, name="profile")
app.add_typer(org.app, name="org")
app.add_typer(registration.app, name="registration")
app.add_typer(manifest.app, name="manifest")
app.add_typer(request.app, name="request")
app.add_typer(crl.app, name="crl")
app.add_typer(device.app, name="device")
app.add_typer(webhook.app, name="webhook")
app.add_typer(webhook.expiry_app, name="expiry")
app.add_typer(principal.app, name="principal")
app.add_typer(fleet.app, name="fleet")
app.command()(serve)
app.command()(demo)


@app.callback()
def options(
    ctx: typer.Context,
    data_dir: Path = typer.Option(None, "--data-dir", envvar="IOTPKI_DATA_DIR",
                                  help="Data directory (default ./iotpki-data)."),
    database_url: str = typer.Option(None, "--database-url", envvar="IOTPKI_DATABASE_URL",
                                     help="SQLAlchemy URL, e.g. postgresql+psycopg://..."),
    public_url: str = typer.Option(None, "--public-url", envvar="IOTPKI_PUBLIC_URL",
                                   help="Base URL put in CRL/OCSP/caIssuers pointers."),
    insecure_keys: bool = typer.Option(
        False, "--insecure-unencrypted-keys",
        help="DEVELOPMENT ONLY: store and load CA keys without encryption."),
) -> None:
    ctx.obj = CLIState(data_dir, database_url, public_url, insecure_keys)


@app.command()
def init(
    ctx: typer.Context,
    demo: bool = typer.Option(False, "--demo", help="Create ChipCo, DeviceCo and OperatorCo."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create the data directory, database, profile file and (with --demo) the story's CAs."""
    cli = state(ctx)
    settings = cli.settings
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    profiles_installed = install_default_profiles(settings)
    passphrase_file = None
    if read_passphrase(settings.data_dir) is None and not settings.allow_unencrypted_keys:
        passphrase_file = create_passphrase_file(settings.data_dir)
    pki = cli.pki()
    created = create_demo_hierarchy(pki) if demo else []
    result = {
        "data_dir": str(settings.data_dir),
        "database": pki.database.dialect,
        "profiles_file": str(settings.profiles_file) if profiles_installed else None,
        "passphrase_file": str(passphrase_file) if passphrase_file else None,
        "authorities_created": [a.label for a in created],
    }
    if as_json:
        emit_json(result)
        return
    console.print(f"iotpki data directory: [bold]{settings.data_dir}[/] ({pki.database.dialect})")
    if passphrase_file:
        errors.print(f"[yellow]generated a CA key passphrase in {passphrase_file} (0600); "
                     "keep it in a secret store and point IOTPKI_CA_PASSPHRASE_FILE at it[/]")
    for a in created:
        console.print(f"created {a.kind.value} authority [bold]{a.label}[/] "
                      f"({a.certificate.subject.rfc4514_string()})")


def main() -> None:
    """Run the command; a PKI error or bad value ends it with a one-line message, no traceback."""
    try:
        app()
    except DecodeError as exc:  # a malformed argument (subject, SAN, certificate file)
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except PKIError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except ValueError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
