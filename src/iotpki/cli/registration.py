"""`iotpki registration create|list|show|cancel`: the RA."""

from __future__ import annotations

from typing import Any

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, details, emit_json, errors, table
from iotpki.core.ca.profile import parse_duration
from iotpki.core.ra.registration import (
    MAY_REVOKE,
    Registration,
    RegistrationMethod,
    RegistrationStatus,
)
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.names import format_san, parse_san, parse_subject

app = typer.Typer(no_args_is_help=True, help="Registrations: who may get which next identity.")
ACTOR = "cli"


def registration_fields(r: Registration) -> dict[str, Any]:
    return {
        "id": r.id, "organization": r.organization, "authority": r.authority,
        "profile": r.profile, "method": r.method.value, "status": r.status.value,
        "subject": r.subject.rfc4514_string() if r.subject is not None else None,
        "sans": [format_san(n) for n in r.sans] if r.sans is not None else None,
        "identity_fingerprint": r.identity_fingerprint, "identity_issuer": r.identity_issuer,
        "identity_serial": r.identity_serial, "expires_at": r.expires_at,
        "created_at": r.created_at, "created_by": r.created_by, "consumed_at": r.consumed_at,
        "certificate": r.certificate, "manifest": r.manifest, "component_id": r.component_id,
        "reference": r.reference, "uses_allowed": r.uses_allowed, "uses": r.uses,
        "failed_secrets": r.failed_secrets, "locked_at": r.locked_at,
        "may_revoke": r.may_revoke,
    }


@app.command()
def create(
    ctx: typer.Context,
    organization: str = typer.Option(..., "--org"),
    authority: str = typer.Option(..., "--ca", help="The organization's issuing authority."),
    profile: str = typer.Option(..., "--profile"),
    method: RegistrationMethod = typer.Option(..., "--method"),
    fingerprint: str = typer.Option(None, "--fingerprint", help="Previous identity, SHA-256."),
    issuer: str = typer.Option(None, "--issuer", help="Previous identity's issuer (RFC 4514)."),
    serial: str = typer.Option(None, "--serial", help="Previous identity's serial (hex)."),
    subject: str = typer.Option(None, "--subject", help="Approved subject (else the CSR's)."),
    sans: list[str] = typer.Option([], "--san", help="Approved SAN type:value."),
    domain: str = typer.Option(None, "--domain", help="Adds SAN urn:iotpki:domain:DOMAIN."),
    lifetime: str = typer.Option("30d", "--lifetime"),
    reference: str = typer.Option(None, "--reference", help="A reusable credential's name: "
                                  "the client's CMP senderKID (or EST user name)."),
    uses: int = typer.Option(1, "--uses", min=1, help="Issuances the secret authorizes."),
    may_revoke: bool = typer.Option(False, "--may-revoke", help="The secret may also revoke "
                                    "the certificates it could have issued (CMP rr)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Authorize one next identity. A one-time secret is shown once; only its hash (and, for
    CMP MAC protection, a copy sealed under a key derived from the CA passphrase) is stored.
    With --reference and --uses N the secret is a reusable credential (a production line, a
    batch): N issuances until --lifetime ends, cancellable, each one audited."""
    spec = RegistrationSpec(
        organization=organization, authority=authority, profile=profile, method=method,
        subject=parse_subject(subject) if subject else None,
        sans=tuple(parse_san(s) for s in sans) if sans else None, domain=domain,
        identity_fingerprint=fingerprint, identity_issuer=issuer, identity_serial=serial,
        lifetime=parse_duration(lifetime), reference=reference, uses=uses,
        attributes={MAY_REVOKE: True} if may_revoke else {})
    created = state(ctx).pki().registrations.create(spec, ACTOR)
    fields = {**registration_fields(created.registration), "secret": created.secret}
    if as_json:
        emit_json(fields)
        return
    details(f"registration {created.registration.id}", fields)
    if created.secret:
        errors.print("[yellow]the one-time secret is shown only now[/]")


@app.command("list")
def list_(ctx: typer.Context, organization: str = typer.Option(None, "--org"),
          status: RegistrationStatus = typer.Option(None, "--status"),
          limit: int = typer.Option(100, "--limit", min=1, max=10000),
          offset: int = typer.Option(0, "--offset", min=0), as_json: bool = JSON_OPTION) -> None:
    rows = [registration_fields(r) for r in state(ctx).pki().registrations.find(
        organization, status, limit, offset)]
    if as_json:
        emit_json(rows)
        return
    table("registrations", ["id", "organization", "profile", "method", "status", "expires"],
          [(r["id"], r["organization"], r["profile"], r["method"], r["status"], r["expires_at"])
           for r in rows])


@app.command()
def show(ctx: typer.Context, registration_id: str, as_json: bool = JSON_OPTION) -> None:
    fields = registration_fields(state(ctx).pki().registrations.get(registration_id))
    emit_json(fields) if as_json else details(f"registration {registration_id}", fields)


@app.command()
def unlock(ctx: typer.Context, registration_id: str, as_json: bool = JSON_OPTION) -> None:
    """Unlock a registration locked after too many wrong secrets (audited)."""
    fields = registration_fields(state(ctx).pki().registrations.unlock(registration_id, ACTOR))
    emit_json(fields) if as_json else details(f"registration {registration_id}", fields)


@app.command()
def cancel(ctx: typer.Context, registration_id: str, as_json: bool = JSON_OPTION) -> None:
    fields = registration_fields(state(ctx).pki().registrations.cancel(registration_id, ACTOR))
    emit_json(fields) if as_json else details(f"registration {registration_id}", fields)
