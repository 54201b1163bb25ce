"""`iotpki principal create|list|revoke`: API principals (REST integrators).

An API key is printed once, at creation; only its SHA-256 is stored."""

from __future__ import annotations

from typing import Any

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, details, emit_json, errors, table
from iotpki.core.integration.principal import Principal, Role

app = typer.Typer(no_args_is_help=True, help="API principals: API keys and client certificates.")
ACTOR = "cli"


def principal_fields(p: Principal) -> dict[str, Any]:
    return {
        "id": p.id, "organization": p.organization, "role": p.role.value, "name": p.name,
        "kind": p.kind.value, "certificate_fingerprint": p.certificate_fingerprint,
        "certificate_subject": p.certificate_subject,
        "certificate_authority": p.certificate_authority, "created_at": p.created_at,
        "created_by": p.created_by, "revoked_at": p.revoked_at,
    }


@app.command()
def create(
    ctx: typer.Context,
    organization: str = typer.Option(..., "--org"),
    role: Role = typer.Option(..., "--role"),
    name: str = typer.Option(..., "--name", help="Who this is, e.g. 'crm' or 'factory-line-3'."),
    fingerprint: str = typer.Option(None, "--cert-fingerprint",
                                    help="Bind to this client certificate (SHA-256) instead "
                                         "of issuing an API key."),
    subject: str = typer.Option(None, "--cert-subject",
                                help="Bind to client certificates with this subject ..."),
    authority: str = typer.Option(None, "--cert-ca", help="... issued by this authority."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a principal: an API key (printed once), or a client-certificate binding."""
    service = state(ctx).pki().principals
    key = None
    if fingerprint or subject:
        principal = service.create_certificate_principal(
            organization, role, name, ACTOR, fingerprint=fingerprint, subject=subject,
            authority=authority)
    else:
        created = service.create_api_key(organization, role, name, ACTOR)
        principal, key = created.principal, created.api_key
    fields = {**principal_fields(principal), "api_key": key}
    if as_json:
        emit_json(fields)
        return
    details(f"principal {principal.id}", fields)
    if key:
        errors.print("[yellow]the API key is shown only now; only its hash is stored[/]")


@app.command("list")
def list_(ctx: typer.Context, organization: str = typer.Option(None, "--org"),
          as_json: bool = JSON_OPTION) -> None:
    rows = [principal_fields(p) for p in state(ctx).pki().principals.list(organization)]
    if as_json:
        emit_json(rows)
        return
    table("principals", ["id", "organization", "role", "name", "kind", "revoked"],
          [(r["id"], r["organization"], r["role"], r["name"], r["kind"], r["revoked_at"] or "")
           for r in rows])


@app.command()
def revoke(ctx: typer.Context, principal_id: str, as_json: bool = JSON_OPTION) -> None:
    """Revoke a principal: its key or certificate binding stops working at once."""
    principal = state(ctx).pki().principals.revoke(principal_id, ACTOR)
    emit_json(principal_fields(principal)) if as_json else console.print(
        f"principal {principal.id} revoked")
