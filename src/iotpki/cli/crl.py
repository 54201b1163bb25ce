"""`iotpki crl publish|show|shards`: CRLs on demand (RFC 5280 §5), the CA's own and its
CRL shards' (§5.2.5)."""

from __future__ import annotations

from pathlib import Path

import typer
from cryptography import x509

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, details, emit_json, fail, table
from iotpki.core.revocation.status import CRLInfo, CRLKind

app = typer.Typer(no_args_is_help=True, help="Publish and inspect CRLs.")


def _fields(info: CRLInfo) -> dict[str, object]:
    return {"authority": info.authority, "kind": info.kind.value, "number": info.number,
            "base_number": info.base_number, "this_update": info.this_update,
            "next_update": info.next_update, "entries": info.entries, "shard": info.shard}


SHARD_OPTION = typer.Option(None, "--shard", help="A CRL shard of a sharded authority "
                            "(`iotpki crl shards`); default: the authority's own CRL.")


@app.command()
def publish(
    ctx: typer.Context,
    authority: str = typer.Argument(..., help="Issuing authority label."),
    full_only: bool = typer.Option(False, "--full", help="Only a full CRL."),
    delta_only: bool = typer.Option(False, "--delta", help="Only a delta CRL."),
    shard: int = SHARD_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Publish a full and a delta CRL now (or only the kind asked for)."""
    kinds = [CRLKind.FULL, CRLKind.DELTA]
    if full_only != delta_only:
        kinds = [CRLKind.FULL] if full_only else [CRLKind.DELTA]
    published = state(ctx).pki().crls.publish(authority, kinds, shard)  # settings' timing
    if as_json:
        emit_json([_fields(c.info) for c in published])
        return
    for crl in published:
        details(f"{crl.info.kind.value} CRL of {authority}", _fields(crl.info))


@app.command()
def show(
    ctx: typer.Context,
    authority: str = typer.Argument(..., help="Issuing authority label."),
    delta: bool = typer.Option(False, "--delta", help="The delta CRL instead of the full one."),
    out: Path = typer.Option(None, "--out", help="Write the CRL (DER) here."),
    shard: int = SHARD_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The newest published CRL of an authority (or of one of its CRL shards)."""
    kind = CRLKind.DELTA if delta else CRLKind.FULL
    crl = state(ctx).pki().crls.latest(authority, kind, shard)
    if crl is None:
        fail(f"no {kind.value} CRL published for {authority}; run `iotpki crl publish`")
    if out is not None:
        out.write_bytes(crl.der)
    serials = [format(e.serial_number, "x") for e in x509.load_der_x509_crl(crl.der)]
    if as_json:
        emit_json({**_fields(crl.info), "serials": serials})
        return
    details(f"{kind.value} CRL of {authority}", {**_fields(crl.info),
                                                  "serials": "\n".join(serials) or "(none)"})


@app.command()
def shards(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """The live CRL shards of sharded authorities, with their newest full CRL."""
    crls = state(ctx).pki().crls
    rows = []
    for live in crls.live_shards():
        info = crls.latest_info(live.authority, CRLKind.FULL, live.shard)
        rows.append({"authority": live.authority, "shard": live.shard,
                     "expires_at": live.expires_at,
                     "number": info.number if info is not None else None,
                     "entries": info.entries if info is not None else None})
    if as_json:
        emit_json(rows)
        return
    table("CRL shards", ["authority", "shard", "expires at", "CRL number", "entries"],
          [(r["authority"], r["shard"], r["expires_at"], r["number"], r["entries"])
           for r in rows])
