"""`iotpki audit verify|list`."""

from __future__ import annotations

import typer

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, emit_json, errors, table

app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")


@app.command()
def verify(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Check every link of the chain; exit 1 naming each changed, deleted, reordered entry
    or truncated tail."""
    checked, problems = state(ctx).pki().audit.problems()
    if as_json:
        emit_json({"entries": checked, "ok": not problems,
                   "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail}
                                for p in problems]})
    elif problems:
        for problem in problems:
            errors.print(f"[bold red]{problem}[/]", highlight=False)
    else:
        console.print(f"audit log intact: {checked} entries")
    if problems:
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    after: int = typer.Option(0, "--after", help="Show entries after this sequence number."),
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    as_json: bool = JSON_OPTION,
) -> None:
    """Audit entries in order."""
    entries = state(ctx).pki().audit.entries(after, limit)
    rows = [{"seq": e.seq, "at": e.at, "action": e.record.action, "outcome": e.record.outcome,
             "actor": e.record.actor, "target": e.record.target, "details": e.record.details,
             "hash": e.hash} for e in entries]
    if as_json:
        emit_json(rows)
        return
    table("audit log", ["seq", "at", "action", "outcome", "actor", "target", "details"],
          [(r["seq"], r["at"], r["action"], r["outcome"], r["actor"], r["target"],
            ", ".join(f"{k}={v}" for k, v in e.record.details.items()))
           for r, e in zip(rows, entries, strict=True)])
