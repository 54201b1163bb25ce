"""`iotpki config show|set`: settings kept with the data directory (`settings.yaml`).

The public URL is the base of every CRL distribution point, OCSP and caIssuers pointer
(RFC 5280 §4.2.1.13, §4.2.2.1). Changing it republishes at once every CRL whose
issuingDistributionPoint (§5.2.5) no longer names the current distribution points; the URL
it replaces stays named in those CRLs, so certificates issued with it stay in scope."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from iotpki.cli.context import CLIState, state
from iotpki.cli.output import JSON_OPTION, console, details, emit_json, errors
from iotpki.core.ca.urls import normalize_public_url
from iotpki.settings import DEFAULT_PUBLIC_URL, SETTINGS_FILE, store_settings

if TYPE_CHECKING:
    from iotpki.app import PKI

app = typer.Typer(no_args_is_help=True,
                  help="Settings kept with the data directory: the public URL.")
PROMPT = "Public base URL relying parties use for CRLs, OCSP and CA certificates"


class Key(StrEnum):
    PUBLIC_URL = "public-url"


@dataclass(frozen=True)
class URLChange:
    public_url: str
    previous: tuple[str, ...]
    republished: list[str]  # authorities whose CRLs were replaced


def derive_public_url() -> str:
    """What `iotpki serve` answers on by default (--host 127.0.0.1 --http-port 8080)."""
    return DEFAULT_PUBLIC_URL


def choose_public_url(stored: dict[str, Any], given: str | None, interactive: bool) -> str:
    """The public URL `init` stores: the one given, else the one stored already, else asked
    for on a terminal (the derived one offered), else the derived one."""
    if given:
        return normalize_public_url(given)
    if "public_url" in stored:
        return str(stored["public_url"])
    if interactive:
        return normalize_public_url(typer.prompt(PROMPT, default=derive_public_url()))
    return derive_public_url()


def set_public_url(cli: CLIState, url: str, pki: PKI | None = None) -> URLChange:
    """Store `url` in settings.yaml, the URL in effect until now among the previous ones,
    and republish the CRLs whose scope names other URLs."""
    from iotpki.app import build_pki

    new = normalize_public_url(url)
    current = cli.settings
    old = pki.settings if pki is not None else current
    previous = dict.fromkeys([*old.previous_public_urls, old.public_url,
                              *_published_bases(cli, pki)])
    previous.pop(new, None)
    store_settings(current.data_dir, public_url=new, previous_public_urls=list(previous))
    settings = dataclasses.replace(old, public_url=new, previous_public_urls=tuple(previous),
                                   public_url_source=str(current.data_dir / SETTINGS_FILE))
    if pki is not None:
        pki.close()
    fresh = build_pki(settings)
    try:
        republished = fresh.crls.republish_out_of_scope()
    finally:
        fresh.close()
    return URLChange(new, tuple(previous), republished)


def _published_bases(cli: CLIState, pki: PKI | None) -> list[str]:
    """Base URLs the latest CRLs name (what relying parties have seen), if there is a PKI."""
    from iotpki.app import database_exists
    from iotpki.core.revocation.status import CRLKind

    if pki is None:
        if not database_exists(cli.settings):
            return []
        pki = cli.pki()
    bases = []
    for authority in pki.authorities.list():
        latest = pki.crls.latest(authority.label, CRLKind.FULL) if authority.can_issue else None
        if latest is None:
            continue
        for name in _idp_names(latest.der):
            suffix = f"/crl/{authority.label}.crl"
            if name.endswith(suffix):
                bases.append(name.removesuffix(suffix))
    return bases


def _idp_names(der: bytes) -> list[str]:
    from cryptography import x509

    try:
        point = x509.load_der_x509_crl(der).extensions.get_extension_for_class(
            x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in point.full_name or ()]


@app.command("show")
def show(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """The settings in effect and where each comes from."""
    settings = state(ctx).settings
    fields = {
        "data_dir": str(settings.data_dir),
        "settings_file": str(settings.data_dir / SETTINGS_FILE),
        "public_url": settings.public_url,
        "public_url_source": settings.public_url_source,
        "previous_public_urls": list(settings.previous_public_urls),
    }
    if as_json:
        emit_json(fields)
    else:
        details("settings", {k: ", ".join(v) if isinstance(v, list) else v
                             for k, v in fields.items()})


@app.command("set")
def set_(
    ctx: typer.Context,
    key: Key = typer.Argument(..., help="The setting: public-url."),
    value: str = typer.Argument(..., help="Its new value, e.g. http://pki.example:8080."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a setting kept in settings.yaml; a new public URL republishes the CRLs at once.

    Certificates issued from now on name the new URL; CRLs name it and the URLs used
    before, so older certificates stay checkable. Restart `iotpki serve` to serve with it."""
    cli = state(ctx)
    override = cli.settings.public_url_source
    change = set_public_url(cli, value, cli.pki())
    cli.close()
    if as_json:
        emit_json(dataclasses.asdict(change))
    else:
        console.print(f"public URL: [bold]{change.public_url}[/] (stored in "
                      f"{cli.settings.data_dir / SETTINGS_FILE})", highlight=False)
        if change.republished:
            console.print("republished CRLs of " + ", ".join(change.republished), highlight=False)
        console.print("if 'iotpki serve' runs, restart it: it issues and publishes with the URL "
                      "it started with",
                      highlight=False)
    if override.startswith("--public-url"):
        errors.print("[yellow]warning:[/] --public-url / IOTPKI_PUBLIC_URL is set and takes "
                     "precedence over the stored URL; unset it", highlight=False)


def interactive() -> bool:
    return sys.stdin.isatty()
