"""`iotpki acme eab-key|pull-renewals`: External Account Binding keys for ACME accounts
(RFC 8555 §7.3.4; a key binds the account created with it to an organization) and renewal
windows pulled forward (ACME Renewal Information, RFC 9773), docs/acme.md."""

from __future__ import annotations

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, emit_json
from iotpki.core.revocation.crl import parse_delay

app = typer.Typer(no_args_is_help=True, help="ACME: External Account Binding keys, renewal windows.")
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


@app.command("pull-renewals")
def pull_renewals(ctx: typer.Context, authority: str = typer.Option(..., "--authority"),
                  within: str = typer.Option(..., "--within",
                                             help="Spread of the new windows: 24h, 7d, 30m."),
                  reason: str = typer.Option(..., "--reason"),
                  profile: str = typer.Option(None, "--profile"),
                  as_json: bool = JSON_OPTION) -> None:
    """Pull the renewal windows (ACME ARI) of AUTHORITY's certificates forward."""
    try:
        spread = parse_delay(within)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--within") from exc
    pull = state(ctx).pki().renewal_info.pull_forward(authority, profile, spread, reason, ACTOR)
    fields = {"authority": pull.authority, "profile": pull.profile, "at": pull.at,
              "until": pull.at + pull.spread, "reason": pull.reason}
    if as_json:
        emit_json(fields)
    else:
        console.print(f"certificates of {authority} issued until now renew between "
                      f"{pull.at:%Y-%m-%d %H:%M} and {pull.at + pull.spread:%Y-%m-%d %H:%M} UTC")
