"""`iotpki webhook add|list|remove|deliveries` and `iotpki expiry scan`."""

from __future__ import annotations

from typing import Any

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, details, emit_json, errors, table
from iotpki.core.integration.webhook import DeliveryStatus, WebhookDelivery, WebhookSubscription
from iotpki.core.integration.webhook_service import EVENT_TYPES

app = typer.Typer(no_args_is_help=True, help="Webhook subscriptions and their deliveries.")
expiry_app = typer.Typer(no_args_is_help=True, help="The expiry monitor.")
ACTOR = "cli"


def subscription_fields(s: WebhookSubscription) -> dict[str, Any]:
    return {"id": s.id, "organization": s.organization, "url": s.url,
            "event_types": list(s.event_types), "created_at": s.created_at,
            "created_by": s.created_by, "removed_at": s.removed_at}


def delivery_fields(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "subscription": d.subscription, "event_id": d.event_id,
            "event_type": d.event_type, "status": d.status.value, "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at, "last_error": d.last_error,
            "created_at": d.created_at, "delivered_at": d.delivered_at}


@app.command()
def add(ctx: typer.Context, organization: str, url: str,
        events: list[str] = typer.Option(..., "--event", help="Event type or pattern "
                                         f"(repeat): {', '.join(EVENT_TYPES)}, device.*, *"),
        as_json: bool = JSON_OPTION) -> None:
    """Subscribe URL to the organization's events. The signing secret is shown only now."""
    created = state(ctx).pki().webhooks.add(organization, url, events, ACTOR)
    fields = {**subscription_fields(created.subscription), "secret": created.secret}
    if as_json:
        emit_json(fields)
        return
    details(f"webhook {created.subscription.id}", {**fields,
                                                   "event_types": ", ".join(fields["event_types"])})
    errors.print("[yellow]the signing secret is shown only now[/]")


@app.command("list")
def list_(ctx: typer.Context, organization: str = typer.Option(None, "--organization"),
          as_json: bool = JSON_OPTION) -> None:
    rows = [subscription_fields(s) for s in state(ctx).pki().webhooks.find(organization)]
    if as_json:
        emit_json(rows)
        return
    table("webhooks", ["id", "organization", "url", "events"],
          [(r["id"], r["organization"], r["url"], ", ".join(r["event_types"])) for r in rows])


@app.command()
def remove(ctx: typer.Context, subscription_id: str, as_json: bool = JSON_OPTION) -> None:
    fields = subscription_fields(state(ctx).pki().webhooks.remove(subscription_id, ACTOR))
    if as_json:
        emit_json(fields)
        return
    errors.print(f"removed webhook {subscription_id}")


@app.command()
def deliveries(ctx: typer.Context, organization: str = typer.Option(None, "--organization"),
               subscription: str = typer.Option(None, "--subscription"),
               status: DeliveryStatus = typer.Option(None, "--status"),
               limit: int = typer.Option(100, "--limit", min=1, max=10000),
               offset: int = typer.Option(0, "--offset", min=0),
               as_json: bool = JSON_OPTION) -> None:
    rows = [delivery_fields(d) for d in state(ctx).pki().webhooks.deliveries(
        organization, subscription, status, limit, offset)]
    if as_json:
        emit_json(rows)
        return
    table("webhook deliveries", ["id", "event", "status", "attempts", "next attempt", "error"],
          [(r["id"], r["event_type"], r["status"], str(r["attempts"]), r["next_attempt_at"],
            r["last_error"] or "") for r in rows])


@app.command()
def dispatch(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """One round of what each server node does every second: fan new events out to
    deliveries, then send the due ones (for a setup that runs no server)."""
    created, attempted = state(ctx).pki().webhook_dispatcher.run_once()
    if as_json:
        emit_json({"created": created, "attempted": attempted})
        return
    errors.print(f"{created} deliveries created, {attempted} attempted")


@expiry_app.command()
def scan(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Announce certificates that entered their profile's renewal window (once each); the
    servers run this periodically."""
    notices = state(ctx).pki().expiry.scan(actor=ACTOR)
    rows = [{"certificate": f"{n.certificate.authority}:{n.certificate.serial_hex}",
             "subject": n.certificate.subject, "profile": n.certificate.profile,
             "not_after": n.certificate.not_after, "window_start": n.window_start,
             "device": n.device} for n in notices]
    if as_json:
        emit_json(rows)
        return
    table("certificates entering their renewal window",
          ["certificate", "subject", "not after", "device"],
          [(r["certificate"], r["subject"], r["not_after"], r["device"] or "-") for r in rows])
