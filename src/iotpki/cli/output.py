"""Human output (Rich) by default, JSON with `--json` for scripts; errors on stderr."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from iotpki.core.ca.authority import Authority
    from iotpki.core.ca.certificate import CertificateRecord

# Off a terminal (a pipe, a file) tables keep full values on one line each, never folded
# at 80 columns: a serial or subject must survive `grep` and `cut`.
console = Console() if sys.stdout.isatty() else Console(width=100_000)
# An error is one line whatever the terminal (docs/cli.md): Rich must not wrap it, on a TTY
# or off one (where it would wrap at 80 columns).
errors = Console(stderr=True, soft_wrap=True)

# Libraries append their own pointers to messages (cryptography's FAQ link and error kind);
# an iotpki message says what is wrong in its own words.
_LIBRARY_TAIL = re.compile(r"\s*See https?://\S+ for more details\.?.*$")

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable JSON output.")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_default))


def one_line(message: object) -> str:
    """A message on one line: newlines folded into spaces, library pointers dropped."""
    return _LIBRARY_TAIL.sub("", " ".join(str(message).split()))


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {one_line(message)}", highlight=False)
    raise typer.Exit(code)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    view = Table(title=title)
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(_default(v) if not isinstance(v, str) else v for v in row))
    console.print(view)


def details(title: str, fields: Mapping[str, Any]) -> None:
    view = Table(title=title, show_header=False)
    view.add_column("field", style="bold")
    view.add_column("value", overflow="fold")
    for key, value in fields.items():
        view.add_row(key, value if isinstance(value, str) else _default(value))
    console.print(view)


def authority_fields(a: Authority) -> dict[str, Any]:
    cert = a.certificate
    return {
        "label": a.label, "organization": a.organization, "kind": a.kind.value,
        "subject": cert.subject.rfc4514_string(), "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc, "not_after": cert.not_valid_after_utc,
        "key_ref": a.key_ref, "parent": a.parent, "chain_length": len(a.chain) + 1,
        "crl_shard_window": (int(a.crl_shard_window.total_seconds())
                             if a.crl_shard_window is not None else None),
    }


def certificate_fields(r: CertificateRecord) -> dict[str, Any]:
    return {
        "authority": r.authority, "serial": r.serial_hex, "subject": r.subject,
        "sans": list(r.sans), "profile": r.profile, "status": r.status.value,
        "not_before": r.not_before, "not_after": r.not_after, "fingerprint": r.fingerprint,
        "issued_at": r.issued_at, "revoked_at": r.revoked_at,
        "revocation_reason": r.revocation_reason, "crl_shard": r.crl_shard,
    }
