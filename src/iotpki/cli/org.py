"""`iotpki org create|list|domain|domains|trust|suppliers`: organizations, their operational
domains and the suppliers they accept identities from."""

from __future__ import annotations

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, emit_json, table

app = typer.Typer(no_args_is_help=True, help="Organizations, domains and supplier trust.")
ACTOR = "cli"


@app.command()
def create(ctx: typer.Context, label: str, name: str = typer.Option(None, "--name"),
           as_json: bool = JSON_OPTION) -> None:
    """Create an organization (idempotent)."""
    organization = state(ctx).pki().authorities.ensure_organization(label, name or label, ACTOR)
    fields = {"label": organization.label, "name": organization.name,
              "created_at": organization.created_at}
    emit_json(fields) if as_json else console.print(f"organization {label}")


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    rows = [{"label": o.label, "name": o.name, "created_at": o.created_at}
            for o in state(ctx).pki().authorities.organizations()]
    if as_json:
        emit_json(rows)
    else:
        table("organizations", ["label", "name", "created"],
              [(r["label"], r["name"], r["created_at"]) for r in rows])


@app.command()
def domain(ctx: typer.Context, organization: str, name: str, as_json: bool = JSON_OPTION) -> None:
    """Claim an operational domain for ORGANIZATION (SAN urn:iotpki:domain:NAME)."""
    created = state(ctx).pki().organizations.add_domain(organization, name, ACTOR)
    fields = {"domain": created.name, "organization": created.organization}
    emit_json(fields) if as_json else console.print(f"{organization} owns domain {name}")


@app.command()
def network(ctx: typer.Context, domain: str, cidr: str, as_json: bool = JSON_OPTION) -> None:
    """Give DOMAIN the IP network CIDR: IP SANs in it are issued only by its owner's CAs."""
    created = state(ctx).pki().organizations.add_network(domain, cidr, ACTOR)
    fields = {"domain": created.domain, "organization": created.organization,
              "network": str(created.network)}
    emit_json(fields) if as_json else console.print(
        f"domain {domain} ({created.organization}) owns network {created.network}")


@app.command()
def domains(ctx: typer.Context, organization: str = typer.Option(None, "--org"),
            as_json: bool = JSON_OPTION) -> None:
    rows = [{"domain": d.name, "organization": d.organization}
            for d in state(ctx).pki().organizations.domains(organization)]
    if as_json:
        emit_json(rows)
    else:
        table("domains", ["domain", "organization"], [(r["domain"], r["organization"]) for r in rows])


@app.command()
def trust(ctx: typer.Context, organization: str,
          supplier: str = typer.Option(..., "--supplier", help="Organization we take identities from."),
          anchor: str = typer.Option(..., "--anchor", help="Authority or trust anchor label."),
          as_json: bool = JSON_OPTION) -> None:
    """ORGANIZATION accepts identities from SUPPLIER that chain to ANCHOR (again: no change)."""
    organizations = state(ctx).pki().organizations
    # Idempotent, so that a setup script (or the README after `init --demo`) can run it twice.
    already = (supplier, anchor) in organizations.suppliers(organization)
    if not already:
        organizations.trust_supplier(organization, supplier, anchor, ACTOR)
    fields = {"organization": organization, "supplier": supplier, "anchor": anchor,
              "already": already}
    emit_json(fields) if as_json else console.print(
        f"{organization} {'already trusts' if already else 'trusts'} {supplier} through {anchor}")


@app.command()
def suppliers(ctx: typer.Context, organization: str, as_json: bool = JSON_OPTION) -> None:
    rows = [{"supplier": s, "anchor": a}
            for s, a in state(ctx).pki().organizations.suppliers(organization)]
    if as_json:
        emit_json(rows)
    else:
        table(f"suppliers of {organization}", ["supplier", "anchor"],
              [(r["supplier"], r["anchor"]) for r in rows])
