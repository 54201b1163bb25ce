"""`iotpki profile list|show`: the profiles loaded from the data directory's profile file."""

from __future__ import annotations

import typer

from iotpki.app import load_profiles
from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, details, emit_json, table
from iotpki.core.ca.profile import Profile

app = typer.Typer(no_args_is_help=True, help="Certificate profiles (validated when loaded).")


def _fields(p: Profile) -> dict[str, object]:
    return {
        "name": p.name, "kind": p.kind, "validity_days": p.validity.total_seconds() / 86400,
        "key_types": list(p.key_types), "key_usage": list(p.key_usage),
        "extended_key_usage": list(p.extended_key_usage),
        "subject_required": list(p.subject.required), "subject_allowed": list(p.subject.allowed),
        "san_allowed": list(p.san.allowed), "san_required": p.san.required,
        "uri_prefixes": list(p.san.uri_prefixes), "dns_suffixes": list(p.san.dns_suffixes),
        "ocsp_no_check": p.ocsp_no_check, "description": p.description,
        "renewal_window": str(p.renewal_window),
    }


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    profiles = load_profiles(state(ctx).settings.profiles_file)
    rows = [_fields(p) for p in profiles.values()]
    if as_json:
        emit_json(rows)
        return
    table("profiles", ["name", "kind", "validity (days)", "key types", "description"],
          [(r["name"], r["kind"], f"{r['validity_days']:g}", ", ".join(r["key_types"]),  # type: ignore[arg-type]
            r["description"]) for r in rows])


@app.command()
def show(ctx: typer.Context, name: str, as_json: bool = JSON_OPTION) -> None:
    profiles = load_profiles(state(ctx).settings.profiles_file)
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
    fields = _fields(profiles[name])
    if as_json:
        emit_json(fields)
    else:
        details(f"profile {name}", {k: str(v) for k, v in fields.items()})
