"""`iotpki manifest export|import`: signed identity lists between supply-chain stages."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, console, emit_json
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ca.profile import Profile, parse_duration
from iotpki.core.supply_chain.manifests import ImportTarget
from iotpki.wire.chain import decode_certificates
from iotpki.wire.manifest import encrypt_manifest

app = typer.Typer(no_args_is_help=True, help="Supply-chain manifests (CMS SignedData).")
ACTOR = "cli"
# The identities handed from one supply-chain stage to the next (docs/supply-chain.md).
STAGE_KINDS = ("component", "device")


def _not_an_identity_profile(profiles: dict[str, Profile], name: str) -> NoReturn:
    kind = profiles[name].kind if name in profiles else "unknown"
    raise ValueError(f"profile {name} ({kind}) issues no supply-chain identity; a manifest "
                     f"lists profiles of kind {' or '.join(STAGE_KINDS)}")


@app.command()
def export(
    ctx: typer.Context,
    sender: str = typer.Option(..., "--from", help="Sending organization."),
    recipient: str = typer.Option(..., "--to", help="Receiving organization."),
    authority: str = typer.Option(..., "--ca", help="List good identities this CA issued..."),
    profile: str = typer.Option(None, "--profile", help="... of this profile only (default: "
                                "every component and device profile)."),
    fingerprints: list[str] = typer.Option([], "--fingerprint", help="... or exactly these."),
    lifetime: str = typer.Option("30d", "--lifetime", help="Until the manifest expires."),
    delivery_id: str = typer.Option(None, "--delivery-id"),
    encrypt_to: Path = typer.Option(None, "--encrypt-to", exists=True,
                                    help="Recipient's RSA certificate: wrap in EnvelopedData."),
    out: Path = typer.Option(..., "--out"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sign a manifest of identities for the next stage.

    It lists the component and device identities the CA issued (by default every profile of
    those kinds, or --profile), never the service's own certificates (OCSP responder,
    manifest signer, CMP protection, TLS)."""
    pki = state(ctx).pki()
    stage_profiles = [n for n, p in pki.profiles.items() if p.kind in STAGE_KINDS]
    if fingerprints:
        records = [pki.certificates.get_by_fingerprint(f) for f in fingerprints]
    else:
        if profile is not None and profile not in stage_profiles:
            _not_an_identity_profile(pki.profiles, profile)
        records = [r for name in ([profile] if profile else stage_profiles)
                   for r in pki.certificates.find(CertificateQuery(
                       authority=authority, status=CertificateStatus.GOOD, profile=name,
                       limit=10_000_000))]
    for record in records:
        if record.profile not in stage_profiles:
            raise ValueError(f"{record.authority}:{record.serial_hex} is a {record.profile} "
                             "certificate; a manifest lists component and device identities")
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
