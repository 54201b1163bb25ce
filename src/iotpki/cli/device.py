"""`iotpki device list|show|history|event`: devices, their identities and lifecycle events."""

from __future__ import annotations

import json
from typing import Any

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, certificate_fields, details, emit_json, fail, table
from iotpki.core.lifecycle.device import Device, DeviceIdentity, DeviceState
from iotpki.core.lifecycle.transitions import LifecycleEvent, LifecycleOutcome

app = typer.Typer(no_args_is_help=True, help="Devices: state, owner, identity history, events.")
ACTOR = "cli"


def device_fields(d: Device) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "organization": d.organization, "owner": d.current_owner,
            "state": d.state.value, "components": list(d.components),
            "component_digest": d.component_digest.hex(), "created_at": d.created_at,
            "state_changed_at": d.state_changed_at}


def identity_fields(i: DeviceIdentity) -> dict[str, Any]:
    record = certificate_fields(i.certificate) if i.certificate is not None else None
    return {"fingerprint": i.fingerprint, "stage": i.stage, "status": i.status,
            "linked_at": i.linked_at, "certificate": record}


@app.command("list")
def list_(ctx: typer.Context, owner: str = typer.Option(None, "--owner"),
          device_state: DeviceState = typer.Option(None, "--state"),
          limit: int = typer.Option(100, "--limit", min=1, max=10000),
          offset: int = typer.Option(0, "--offset", min=0), as_json: bool = JSON_OPTION) -> None:
    rows = [device_fields(d) for d in state(ctx).pki().devices.find(
        owner, device_state, limit, offset)]
    if as_json:
        emit_json(rows)
        return
    table("devices", ["id", "name", "owner", "state", "created"],
          [(r["id"], r["name"], r["owner"], r["state"], r["created_at"]) for r in rows])


@app.command()
def show(ctx: typer.Context, device_id: str, as_json: bool = JSON_OPTION) -> None:
    fields = device_fields(state(ctx).pki().devices.get(device_id))
    if as_json:
        emit_json(fields)
        return
    details(f"device {device_id}", {**fields, "components": ", ".join(fields["components"])})


@app.command()
def history(ctx: typer.Context, device_id: str, as_json: bool = JSON_OPTION) -> None:
    """The device's chain of identities: components, device certificate, operational
    certificates and renewals, each with stage and status."""
    rows = [identity_fields(i) for i in state(ctx).pki().devices.history(device_id)]
    if as_json:
        emit_json(rows)
        return
    table(f"device {device_id}", ["stage", "status", "authority", "serial", "subject", "linked"],
          [(r["stage"], r["status"], (r["certificate"] or {}).get("authority", "-"),
            (r["certificate"] or {}).get("serial", "-"),
            (r["certificate"] or {}).get("subject", r["fingerprint"]), r["linked_at"])
           for r in rows])


def outcome_fields(o: LifecycleOutcome) -> dict[str, Any]:
    created = o.registration.registration if o.registration is not None else None
    return {"device": device_fields(o.device), "event": o.event.value,
            "previous_state": o.previous_state.value, "previous_owner": o.previous_owner,
            "certificates": [certificate_fields(r) for r in o.certificates],
            "registration": created.id if created is not None else None,
            "cancelled_registrations": list(o.cancelled)}


@app.command()
def event(
    ctx: typer.Context, device_id: str,
    name: str = typer.Argument(..., help=", ".join(e.value for e in LifecycleEvent)),
    details_json: str = typer.Option(None, "--details", help="JSON object, e.g. "
                                     '\'{"new_owner": "newco", "domain": "plant.newco.example"}\''),
    as_json: bool = JSON_OPTION,
) -> None:
    """Report a lifecycle event (docs/lifecycle.md): the device's state changes and the
    certificate action applies to all its current certificates, in one transaction."""
    try:
        extra = json.loads(details_json) if details_json else {}
    except json.JSONDecodeError as exc:
        fail(f"--details is not JSON: {exc}", 2)
    if not isinstance(extra, dict):
        fail("--details must be a JSON object", 2)
    outcome = state(ctx).pki().lifecycle.report(device_id, name, ACTOR, extra)
    fields = outcome_fields(outcome)
    if as_json:
        emit_json(fields)
        return
    details(f"device {device_id}: {outcome.event.value}", {
        "state": f"{outcome.previous_state.value} → {outcome.device.state.value}",
        "owner": outcome.device.current_owner,
        "certificates": ", ".join(f"{r.authority}:{r.serial_hex} {r.status.value}"
                                  for r in outcome.certificates) or "-",
        "registration": fields["registration"] or "-",
        "cancelled registrations": ", ".join(outcome.cancelled) or "-"})
