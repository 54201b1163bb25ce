"""`iotpki doctor`: check the data directory, database, CA keys and passphrase, tokens,
public URL, clock and the HTTP listener, and say what to fix, one line each."""

from __future__ import annotations

import stat
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from iotpki.cli.context import CLIState, state
from iotpki.cli.output import JSON_OPTION, console, emit_json
from iotpki.settings import Settings

if TYPE_CHECKING:
    from iotpki.app import PKI

Check = tuple[str, bool, str]  # (what, ok, detail or what to fix)


def doctor(ctx: typer.Context, as_json: bool = JSON_OPTION,
           recount_fleet: bool = typer.Option(
               False, "--recount-fleet", help="Rebuild the fleet overview's counters from the "
               "certificates (after SQL written by hand, or an older node writing after an "
               "upgrade); reads every certificate once.")) -> None:
    """Check the data directory, database, keys, public URLs and clock."""
    cli = state(ctx)
    settings = cli.settings
    results = [_data_dir(settings)]
    if results[0][1]:
        results += _with_pki(cli)
        if recount_fleet and results[1][1]:  # the database opened at its revision
            results.append(_recount_fleet(cli.pki()))
    results += [_public_url(settings), _listener(settings)]
    if as_json:
        emit_json([{"check": c, "ok": ok, "detail": d} for c, ok, d in results])
    else:
        for check, ok, detail in results:
            mark = "[green]ok[/]  " if ok else "[bold red]FAIL[/]"
            console.print(f"{mark} {check}: {detail}", highlight=False, soft_wrap=True)
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)


def _data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    if not path.is_dir():
        return "data directory", False, f"{path} does not exist: run 'iotpki init' or fix " \
                                        "--data-dir / IOTPKI_DATA_DIR"
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return "data directory", False, f"{path} is {mode:o}: chmod 700 {path}"
    return "data directory", True, f"{path} (700)"


def _with_pki(cli: CLIState) -> list[Check]:
    from iotpki.app import database_exists
    from iotpki.store.database import head_revision

    settings = cli.settings
    if not database_exists(settings):
        return [("database", False, "no iotpki database: run 'iotpki init'")]
    try:
        pki = cli.pki()
    except Exception as exc:  # each failure is one line of the report
        return [("database", False, f"cannot open: {exc}")]
    revision = pki.database.schema_revision()
    results: list[Check] = [("database", revision == head_revision(),
                             f"{pki.database.dialect}, schema {revision}"
                             + ("" if revision == head_revision() else
                                f", code expects {head_revision()}: run 'iotpki init'"))]
    results += [_key(pki, a.label, a.key_ref) for a in pki.authorities.list()
                if a.key_ref is not None]
    results.append(_clock(pki))
    return results


def _recount_fleet(pki: PKI) -> Check:
    from iotpki.store.certificate_tallies import recount

    with pki.database.engine.begin() as conn:
        drifted = recount(conn)
    return ("fleet counters", True,
            "rebuilt: they had drifted from the certificates" if drifted
            else "equal to the certificates")


def _key(pki: PKI, label: str, key_ref: str) -> Check:
    where = "token" if key_ref.startswith("pkcs11:") else "file"
    try:
        pki.keys.load(key_ref)
    except Exception as exc:  # a wrong passphrase, a missing file, token or PIN
        fix = ("check IOTPKI_CA_PASSPHRASE / IOTPKI_CA_PASSPHRASE_FILE" if where == "file"
               else "check IOTPKI_PKCS11_MODULE, the token and its PIN")
        return f"key of {label}", False, f"{exc}; {fix}"
    return f"key of {label}", True, f"loads ({where})"


def _clock(pki: PKI) -> Check:
    """The newest CA certificate was valid from a minute before its creation: a clock
    behind it means this machine's time is wrong."""
    authorities = pki.authorities.list()
    now = datetime.now(UTC)
    ahead = [a.label for a in authorities if a.certificate.not_valid_before_utc > now]
    if ahead:
        return "clock", False, f"{now:%Y-%m-%dT%H:%M:%SZ} is before the notBefore of " \
                               f"{', '.join(ahead)}: set the system time (NTP)"
    return "clock", True, f"{now:%Y-%m-%dT%H:%M:%SZ} UTC"


def _public_url(settings: Settings) -> Check:
    url = urlsplit(settings.public_url)
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
        return "public URL", False, f"{settings.public_url!r} is not a base URL like " \
                                    "http://pki.example:8080: fix --public-url / IOTPKI_PUBLIC_URL"
    return "public URL", True, f"{settings.public_url} (in CRL, OCSP and caIssuers pointers)"


def _listener(settings: Settings) -> Check:
    url = f"{settings.public_url.rstrip('/')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            ok = answer.status == 200
    except OSError as exc:
        return "listener", False, f"{url} does not answer ({getattr(exc, 'reason', exc)}): " \
                                  "start 'iotpki serve', or fix the public URL"
    return "listener", ok, f"{url} answers"
