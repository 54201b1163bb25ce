"""`iotpki acme eab-key`: External Account Binding keys for ACME accounts (RFC 8555 §7.3.4).
A key binds the account created with it to an organization (docs/acme.md)."""

from __future__ import annotations

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, emit_json

app = typer.Typer(no_args_is_help=True, help="ACME: External Account Binding keys.")
ACTOR = "cli"


@app.command("eab-key")
def eab_key(ctx: typer.Context, organization: str = typer.Option(..., "--org"),
            label: str = typer.Option(None, "--label",
                                      help="Only for this ACME endpoint label (default: any)."),
            as_json: bool = JSON_OPTION) -> None:
    """Make an EAB key for ORGANIZATION; its HMAC key is shown once."""
    made = state(ctx).pki().acme_keys.create(organization, ACTOR, label)
    fields = {"key_id": made.key_id, "hmac_key": made.hmac_key,
              "organization": made.organization, "label": made.label}
    if as_json:
        emit_json(fields)
    else:
        console.print(f"key id:   {made.key_id}\nhmac key: {made.hmac_key}\n"
                      f"(shown once; accounts made with it are bound to {organization})")
