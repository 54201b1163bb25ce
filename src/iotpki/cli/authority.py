"""`iotpki authority create|import|crl-shards|list|show|export`."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.cli.context import state
from iotpki.cli.output import JSON_OPTION, authority_fields, console, details, emit_json, table
from iotpki.core.ca.ca_certificate import CASpec
from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.profile import parse_duration
from iotpki.keys.errors import KeyProtectionError
from iotpki.settings import KEY_BACKENDS
from iotpki.wire.chain import decode_certificates, encode_pem_chain, encode_pkcs7_chain
from iotpki.wire.keys import KEY_TYPES
from iotpki.wire.names import parse_subject
from iotpki.wire.pkcs11_uri import decode_pkcs11_uri

app = typer.Typer(no_args_is_help=True, help="Certificate authorities and trust anchors.")
ACTOR = "cli"
KEY_BACKEND_OPTION = typer.Option(
    None, "--key-backend", help="software or pkcs11; default IOTPKI_KEY_BACKEND (software).")
KEY_URI_OPTION = typer.Option(
    None, "--key-uri", help="PKCS#11 URI (RFC 7512) of the token for the new key, e.g. "
    "'pkcs11:token=ca-hsm', optionally with object= for its label; no PIN in it.")


def _name_constraints(
    permit_dns: list[str], exclude_dns: list[str], permit_ip: list[str]
) -> x509.NameConstraints | None:
    permitted: list[x509.GeneralName] = [x509.DNSName(d) for d in permit_dns]
    permitted += [x509.IPAddress(ipaddress.ip_network(n)) for n in permit_ip]
    excluded: list[x509.GeneralName] = [x509.DNSName(d) for d in exclude_dns]
    if not permitted and not excluded:
        return None
    return x509.NameConstraints(permitted or None, excluded or None)


@app.command()
def create(
    ctx: typer.Context,
    label: str = typer.Argument(..., help="Label used in URLs, e.g. chipco-components."),
    organization: str = typer.Option(..., "--org", help="Owning organization (created if new)."),
    subject: str = typer.Option(..., "--subject", help="RFC 4514 subject, e.g. 'CN=X CA,O=X'."),
    key_type: str = typer.Option("ec-p256", "--key-type", help=f"One of {', '.join(KEY_TYPES)}."),
    validity: str = typer.Option("10y", "--validity", help="e.g. 20y, 3650d."),
    parent: str = typer.Option(None, "--parent", help="Issuing authority; omit for a root."),
    path_length: int = typer.Option(None, "--path-length", help="basicConstraints pathLen."),
    permit_dns: list[str] = typer.Option([], "--permit-dns", help="Permitted DNS subtree."),
    exclude_dns: list[str] = typer.Option([], "--exclude-dns", help="Excluded DNS subtree."),
    permit_ip: list[str] = typer.Option([], "--permit-ip", help="Permitted IP network (CIDR)."),
    key_backend: str = KEY_BACKEND_OPTION,
    key_uri: str = KEY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a root CA, or an intermediate signed by --parent."""
    # Check every argument before anything is written (no organization left behind).
    spec = CASpec(parse_subject(subject), parse_duration(validity), path_length,
                  _name_constraints(permit_dns, exclude_dns, permit_ip))
    location = key_location(key_backend, key_uri)
    pki = state(ctx).pki()
    pki.keys.check(key_type, location)  # token there, PIN right, mechanisms present
    pki.authorities.ensure_organization(organization, organization, ACTOR)
    authority = pki.authorities.create(label, organization, key_type, spec, ACTOR, parent,
                                       key_location=location)
    _show(authority_fields(authority), as_json, f"created authority {label}")


def key_location(backend: str | None, uri: str | None) -> str | None:
    """The key ring location the two options name (None: the configured default)."""
    if uri is not None:
        if not uri.startswith("pkcs11:"):
            raise ValueError("--key-uri must be a PKCS#11 URI (pkcs11:...)")
        if backend not in (None, "pkcs11"):
            raise ValueError("--key-uri names a token: it goes with --key-backend pkcs11")
        decode_pkcs11_uri(uri)  # a malformed URI is refused before anything happens
        return uri
    if backend is not None and backend not in KEY_BACKENDS:
        raise ValueError(f"--key-backend must be one of {', '.join(KEY_BACKENDS)}")
    return backend


@app.command("rotate-responder")
def rotate_responder(
    ctx: typer.Context, label: str,
    key_backend: str = KEY_BACKEND_OPTION,
    key_uri: str = KEY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Give the authority's OCSP responder a new key and certificate now.

    The delegated responder (RFC 6960 §4.2.2.2) key goes where the options say, by default
    beside the CA's own key (a CA on a token gets its responder key on the same token)."""
    location = key_location(key_backend, key_uri)
    pki = state(ctx).pki()
    pki.authorities.get(label)
    pki.keys.check("ec-p256", location)
    record = pki.service_certificates.rotate(label, Purpose.OCSP_SIGNING, location=location)
    fields: dict[str, object] = {
        "authority": label, "serial": format(record.certificate.serial_number, "x"),
        "not_after": record.not_after.isoformat(),
        "key_location": pki.keys.location_of(record.key_ref)}
    _show(fields, as_json, f"new OCSP responder for {label}")


def _read_key(path: Path, passphrase_file: Path | None, insecure: bool) -> object:
    data = path.read_bytes()
    passphrase = passphrase_file.read_bytes().strip() if passphrase_file else None
    if passphrase is None and os.environ.get("IOTPKI_IMPORT_KEY_PASSPHRASE"):
        passphrase = os.environ["IOTPKI_IMPORT_KEY_PASSPHRASE"].encode()
    if passphrase is None and not insecure:
        raise KeyProtectionError(
            f"{path} is not encrypted (or no passphrase given): give --key-passphrase-file or "
            "IOTPKI_IMPORT_KEY_PASSPHRASE, or --insecure-unencrypted-keys for development only")
    try:
        return serialization.load_pem_private_key(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyProtectionError(f"cannot read private key {path}: {exc}") from exc


@app.command("import")
def import_(
    ctx: typer.Context,
    label: str = typer.Argument(...),
    organization: str = typer.Option(..., "--org", help="Owning organization (created if new)."),
    cert_file: Path = typer.Option(..., "--cert", exists=True, dir_okay=False,
                                   help="PEM: the CA certificate first, then its issuers."),
    key_file: Path = typer.Option(None, "--key", exists=True, dir_okay=False,
                                  help="PEM private key; omit to import a trust anchor."),
    key_passphrase_file: Path = typer.Option(None, "--key-passphrase-file", exists=True),
    key_uri: str = typer.Option(
        None, "--key-uri", help="PKCS#11 URI of the CA's key already on a token "
        "(object= and/or id=); it stays there. Or, with --key, the token to copy it to."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import an existing CA (with --key or --key-uri) or an external trust anchor."""
    cli = state(ctx)
    pki = cli.pki()
    certs = decode_certificates(cert_file.read_bytes())
    location = key_location("pkcs11" if key_uri else None, key_uri)
    key = None
    if key_file is not None:
        key = _read_key(key_file, key_passphrase_file, cli.settings.allow_unencrypted_keys)
    elif key_uri is not None:
        key, location = pki.keys.load(key_uri), None  # an existing token key, found now
    pki.authorities.ensure_organization(organization, organization, ACTOR)
    if key is None:
        authority = pki.authorities.import_trust_anchor(label, organization, certs[0], ACTOR)
    else:
        authority = pki.authorities.import_authority(
            label, organization, certs[0], certs[1:], key, ACTOR, key_location=location)
    _show(authority_fields(authority), as_json, f"imported authority {label}")


@app.command("crl-shards")
def crl_shards(
    ctx: typer.Context, label: str,
    window: str = typer.Option(None, "--window", help="Shard the CRL by certificate expiry "
                               "in windows of this length, e.g. 7d, 30d (at least 1h)."),
    off: bool = typer.Option(False, "--off", help="Back to one CRL for the whole CA."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Shard the authority's CRL (RFC 5280 §5.2.5) by expiry window, or stop sharding.

    Applies to certificates issued from now on (each keeps the CRL its CDP names); serving
    nodes apply it when restarted. See docs/crl.md for choosing the window."""
    if (window is None) == (not off):
        raise ValueError("give --window DURATION or --off")
    pki = state(ctx).pki()
    authority = pki.authorities.set_crl_sharding(
        label, parse_duration(window) if window is not None else None, ACTOR)
    _show(authority_fields(authority), as_json,
          f"CRL of {label} " + ("sharded every " + window if window else "not sharded"))


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """All authorities and trust anchors."""
    rows = [authority_fields(a) for a in state(ctx).pki().authorities.list()]
    if as_json:
        emit_json(rows)
        return
    table("authorities", ["label", "organization", "kind", "subject", "not after"],
          [(r["label"], r["organization"], r["kind"], r["subject"], r["not_after"]) for r in rows])


@app.command()
def show(ctx: typer.Context, label: str, as_json: bool = JSON_OPTION) -> None:
    """One authority in detail."""
    _show(authority_fields(state(ctx).pki().authorities.get(label)), as_json, f"authority {label}")


@app.command()
def export(
    ctx: typer.Context, label: str,
    fmt: str = typer.Option("pem", "--format", help="pem or pkcs7 (DER, certs-only)."),
    out: Path = typer.Option(None, "--out", help="File to write; default stdout (PEM only)."),
) -> None:
    """The CA's chain, itself first, root last, as PEM or PKCS#7."""
    chain = state(ctx).pki().authorities.get(label).full_chain
    if fmt not in ("pem", "pkcs7"):
        raise ValueError("--format must be pem or pkcs7")
    data = encode_pem_chain(chain) if fmt == "pem" else encode_pkcs7_chain(chain)
    if out is not None:
        out.write_bytes(data)
    elif fmt == "pem":
        typer.echo(data.decode(), nl=False)
    else:
        raise ValueError("PKCS#7 is binary: give --out FILE")


def _show(fields: dict[str, object], as_json: bool, title: str) -> None:
    if as_json:
        emit_json(fields)
    else:
        details(title, fields)
        console.print()
