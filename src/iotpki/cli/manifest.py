"""`iotpki manifest export|import`: signed identity lists between supply-chain stages."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, emit_json
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ca.profile import parse_duration
from iotpki.core.supply_chain.manifests import ImportTarget
from iotpki.wire.chain import decode_certificates
from iotpki.wire.manifest import encrypt_manifest

app = typer.Typer(no_args_is_help=True, help="Supply-chain manifests (CMS SignedData).")
ACTOR = "cli"


@app.command()
def export(
    ctx: typer.Context,
    sender: str = typer.Option(..., "--from", help="Sending organization."),
    recipient: str = typer.Option(..., "--to", help="Receiving organization."),
    authority: str = typer.Option(..., "--ca", help="List good certificates of this CA..."),
    profile: str = typer.Option(None, "--profile", help="... of this profile only."),
    fingerprints: list[str] = typer.Option([], "--fingerprint", help="... or exactly these."),
    lifetime: str = typer.Option("30d", "--lifetime", help="Until the manifest expires."),
    delivery_id: str = typer.Option(None, "--delivery-id"),
    encrypt_to: Path = typer.Option(None, "--encrypt-to", exists=True,
                                    help="Recipient's RSA certificate: wrap in EnvelopedData."),
    out: Path = typer.Option(..., "--out"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sign a manifest of identities for the next stage."""
    pki = state(ctx).pki()
    if fingerprints:
        records = [pki.certificates.get_by_fingerprint(f) for f in fingerprints]
    else:
        records = pki.certificates.find(CertificateQuery(
            authority=authority, status=CertificateStatus.GOOD, profile=profile, limit=10_000_000))
    signed = pki.manifests.export(sender, recipient, records, ACTOR, parse_duration(lifetime),
                                  delivery_id)
    if encrypt_to is not None:
        signed = encrypt_manifest(signed, decode_certificates(encrypt_to.read_bytes())[0])
    out.write_bytes(signed)
    result = {"entries": len(records), "file": str(out), "encrypted": encrypt_to is not None}
    emit_json(result) if as_json else console.print(f"manifest with {len(records)} identities → {out}")


@app.command("import")
def import_(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False),
    recipient: str = typer.Option(..., "--org", help="This (receiving) organization."),
    authority: str = typer.Option(..., "--ca", help="CA that issues the next identities."),
    profile: str = typer.Option(..., "--profile", help="Profile of the next identities."),
    domain: str = typer.Option(None, "--domain", help="Bind them to this operational domain."),
    lifetime: str = typer.Option("365d", "--lifetime", help="How long the registrations last."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Verify a manifest and register every identity on it (one transaction)."""
    pki = state(ctx).pki()
    target = ImportTarget(authority, profile, parse_duration(lifetime), domain)
    with Progress("importing", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=as_json, transient=True) as bar:
        task = bar.add_task("import", total=None)
        result = pki.manifests.import_manifest(
            recipient, manifest.read_bytes(), target, ACTOR,
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    fields = {"delivery_id": result.delivery_id, "sender": result.sender,
              "entries": result.entries}
    emit_json(fields) if as_json else console.print(
        f"imported {result.entries} identities from {result.sender} "
        f"(delivery {result.delivery_id})")
