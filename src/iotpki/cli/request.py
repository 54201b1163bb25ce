"""`iotpki request list|show|approve|reject`: requests waiting on manual approval."""

from __future__ import annotations

from typing import Any

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, certificate_fields, console, details, emit_json, table
from iotpki.core.outcomes import Issued
from iotpki.core.ra.pending import PendingRequest, PendingStatus

app = typer.Typer(no_args_is_help=True, help="Enrollment requests waiting on an operator.")
ACTOR = "cli"


def _fields(p: PendingRequest) -> dict[str, Any]:
    return {"id": p.id, "authority": p.authority, "profile": p.profile, "status": p.status.value,
            "requester": p.requester, "presented": p.presented, "created_at": p.created_at,
            "decided_at": p.decided_at, "decided_by": p.decided_by,
            "certificate": p.certificate, "reason": p.reason}


@app.command("list")
def list_(ctx: typer.Context, status: PendingStatus = typer.Option(PendingStatus.PENDING, "--status"),
          as_json: bool = JSON_OPTION) -> None:
    rows = [_fields(p) for p in state(ctx).pki().enrollment.approval.find(status)]
    if as_json:
        emit_json(rows)
        return
    table("requests", ["id", "authority", "profile", "requester", "created"],
          [(r["id"], r["authority"], r["profile"], r["requester"], r["created_at"]) for r in rows])


@app.command()
def show(ctx: typer.Context, request_id: str, as_json: bool = JSON_OPTION) -> None:
    fields = _fields(state(ctx).pki().enrollment.approval.get(request_id))
    emit_json(fields) if as_json else details(f"request {request_id}", fields)


@app.command()
def approve(ctx: typer.Context, request_id: str, as_json: bool = JSON_OPTION) -> None:
    """Issue the request's certificate (the profile still decides; a refusal rejects it)."""
    outcome = state(ctx).pki().enrollment.approval.approve(request_id, ACTOR)
    if isinstance(outcome, Issued):
        fields = certificate_fields(outcome.record)
        emit_json(fields) if as_json else console.print(
            f"approved: issued {outcome.record.authority}:{outcome.record.serial_hex}")
        return
    emit_json({"refused": outcome.reason.value, "detail": outcome.detail}) if as_json else \
        console.print(f"refused by policy ({outcome.reason.value}): {outcome.detail}")
    raise typer.Exit(3)


@app.command()
def reject(ctx: typer.Context, request_id: str,
           reason: str = typer.Option(..., "--reason"), as_json: bool = JSON_OPTION) -> None:
    approval = state(ctx).pki().enrollment.approval
    approval.reject(request_id, ACTOR, reason)
    fields = _fields(approval.get(request_id))
    emit_json(fields) if as_json else console.print(f"rejected {request_id}")
