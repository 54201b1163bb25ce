"""Entry point of the `iotpki` command: global options, `init`, and the sub-command groups.

Sub-commands are registered in `cli/lazy.py` and imported only when they run, so that
`iotpki --help` and simple commands start fast (docs/performance.md, bench/cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from iotpki.cli.context import CLIState, state
from iotpki.cli.lazy import LazyGroup
from iotpki.cli.output import JSON_OPTION, console, emit_json, errors, one_line
from iotpki.wire.errors import DecodeError, PKIError

if TYPE_CHECKING:
    from iotpki.app import PKI
    from iotpki.core.ca.authority import Authority

app = typer.Typer(
    name="iotpki", no_args_is_help=True, pretty_exceptions_enable=False, cls=LazyGroup,
    help="Certificate lifecycle manager for IoT devices: CA, RA and supply-chain identities.",
)


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
    # Close the database pool when the command ends, not when the process does: a command
    # run in process (tests, scripts importing the CLI) must not leave connections open.
    ctx.call_on_close(ctx.obj.close)


@app.command()
def init(
    ctx: typer.Context,
    demo: bool = typer.Option(False, "--demo", help="Create ChipCo, DeviceCo and OperatorCo."),
    public_url: str = typer.Option(
        None, "--public-url", help="Base URL relying parties reach this server at (put in "
        "CRL/OCSP/caIssuers pointers); asked for on a terminal, else "
        "http://127.0.0.1:8080 (where 'iotpki serve' listens by default)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create the data directory, database, profile file and (with --demo) the story's CAs.

    The public URL is stored in the data directory's settings.yaml, which `iotpki serve`
    reads; change it later with `iotpki config set public-url URL`."""
    from iotpki.app import install_default_profiles
    from iotpki.cli.config import choose_public_url, interactive, set_public_url
    from iotpki.keys.passphrase import create_passphrase_file, read_passphrase
    from iotpki.settings import read_stored_settings, store_settings

    cli = state(ctx)
    settings = cli.settings
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stored = read_stored_settings(settings.data_dir)
    url = choose_public_url(stored, public_url or cli.public_url, interactive() and not as_json)
    profiles_installed = install_default_profiles(settings)
    passphrase_file = None
    if read_passphrase(settings.data_dir) is None and not settings.allow_unencrypted_keys:
        passphrase_file = create_passphrase_file(settings.data_dir)
    if "public_url" not in stored:  # a new data directory
        store_settings(settings.data_dir, public_url=url)
    pki = cli.pki(create=True)
    if stored.get("public_url", url) != url:  # init again with another URL: as `config set`
        set_public_url(cli, url, pki)
        cli.close()
        pki = cli.pki()
    created = _demo(pki) if demo else []
    result = {
        "data_dir": str(settings.data_dir),
        "database": pki.database.dialect,
        "public_url": pki.settings.public_url,
        "profiles_file": str(settings.profiles_file) if profiles_installed else None,
        "passphrase_file": str(passphrase_file) if passphrase_file else None,
        "authorities_created": [a.label for a in created],
    }
    if as_json:
        emit_json(result)
        return
    console.print(f"iotpki data directory: [bold]{settings.data_dir}[/] ({pki.database.dialect})")
    console.print(f"public URL: [bold]{pki.settings.public_url}[/] (in every certificate's "
                  "CRL and OCSP pointers; 'iotpki config set public-url URL' changes it)",
                  highlight=False)
    if passphrase_file:
        errors.print(f"[yellow]generated a CA key passphrase in {passphrase_file} (0600); "
                     "keep it in a secret store and point IOTPKI_CA_PASSPHRASE_FILE at it[/]")
    for a in created:
        console.print(f"created {a.kind.value} authority [bold]{a.label}[/] "
                      f"({a.certificate.subject.rfc4514_string()})")


def _demo(pki: PKI) -> list[Authority]:
    from iotpki.cli.demo_setup import create_demo_hierarchy

    return create_demo_hierarchy(pki)


def main() -> None:
    """Run the command; a PKI error or bad value ends it with a one-line message, no traceback."""
    try:
        app()
    except DecodeError as exc:  # a malformed argument (subject, SAN, certificate file)
        errors.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False)
        sys.exit(2)
    except PKIError as exc:
        errors.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False)
        sys.exit(1)
    except ValueError as exc:
        errors.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
