"""`iotpki cert issue|list|show|revoke|release`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from cryptography.hazmat.primitives import serialization

from iotpki.cli.context import state
from iotpki.cli.output import (
    JSON_OPTION,
    certificate_fields,
    console,
    details,
    emit_json,
    errors,
    table,
)
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.methods import ENROLLMENT_METHODS, MethodName, enrollment_method
from iotpki.core.revocation.reasons import REASONS, parse_reason

if TYPE_CHECKING:
    from iotpki.core.outcomes import Issued, Pending, Rejected

# What only issuing and enrolling need (the issuance pipeline, CSR and chain codecs) is
# imported in those commands: `cert list` and `cert show` start without it.

app = typer.Typer(no_args_is_help=True, help="Issue, find and revoke certificates.")
ACTOR = "cli"


def _aware(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or +00:00")
    return moment


def _serial(value: str) -> int:
    try:
        return int(value.lower().removeprefix("0x").replace(":", ""), 16)
    except ValueError:
        raise ValueError(f"serial {value!r} is not hexadecimal (e.g. 4ba71938…, as "
                         "'iotpki cert list' shows it)") from None


@app.command()
def issue(
    ctx: typer.Context,
    authority: str = typer.Option(..., "--ca", help="Issuing authority label."),
    profile: str = typer.Option(..., "--profile", help="Profile name (iotpki profile list)."),
    csr_file: Path = typer.Option(..., "--csr", exists=True, dir_okay=False, help="PEM or DER."),
    subject: str = typer.Option(None, "--subject", help="Approved subject (replaces the CSR's); "
                                "'' for an empty one."),
    sans: list[str] = typer.Option([], "--san", help="Approved SAN type:value (replaces CSR's)."),
    not_after: str = typer.Option(None, "--not-after", help="ISO 8601, e.g. 2027-01-01T00:00Z."),
    out: Path = typer.Option(None, "--out", help="Write the certificate (PEM) here."),
    with_chain: bool = typer.Option(False, "--chain", help="Append the CA chain to the PEM."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a certificate from a CSR; the profile decides everything the RA did not approve."""
    from iotpki.core.ca.issuance import IssuanceRequest
    from iotpki.wire.names import parse_san, parse_subject

    pki = state(ctx).pki()
    request = IssuanceRequest(
        authority=authority, profile=profile, csr=csr_file.read_bytes(), requester=ACTOR,
        subject=parse_subject(subject) if subject is not None else None,  # "": empty subject
        sans=tuple(parse_san(s) for s in sans) if sans else None,
        not_after=_aware(not_after) if not_after else None, method=MethodName.OPERATOR,
    )
    _report_outcome(pki.issuance.issue(request), out, with_chain, as_json)


@app.command()
def enroll(
    ctx: typer.Context,
    method: str = typer.Option(..., "--method", help="previous-stage-certificate, "
                               "current-certificate or one-time-secret."),
    csr_file: Path = typer.Option(..., "--csr", exists=True, dir_okay=False),
    client_cert: Path = typer.Option(None, "--client-cert", exists=True,
                                     help="The identity presented: PEM chain, leaf first."),
    client_key: Path = typer.Option(None, "--client-key", exists=True,
                                    help="Its key (PEM), to sign the CSR as proof of possession."),
    registration_id: str = typer.Option(None, "--registration"),
    secret: str = typer.Option(None, "--secret", envvar="IOTPKI_ENROLLMENT_SECRET"),
    authority: str = typer.Option(None, "--ca"),
    profile: str = typer.Option(None, "--profile"),
    out: Path = typer.Option(None, "--out"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Enroll as a device would, through an enrollment method (the RA decides).
    Exit 0 issued, 3 refused, 4 pending manual approval."""
    from iotpki.core.ra.enrollment import EnrollmentRequest
    from iotpki.wire.chain import decode_certificates
    from iotpki.wire.csr import decode_csr
    from iotpki.wire.possession import sign_possession

    csr = csr_file.read_bytes()
    chain = tuple(decode_certificates(client_cert.read_bytes())) if client_cert else ()
    proof = None
    if client_key is not None:
        key = serialization.load_pem_private_key(client_key.read_bytes(), None)
        proof = sign_possession(key, decode_csr(csr).public_bytes(serialization.Encoding.DER))
    outcome = state(ctx).pki().enrollment.enroll(EnrollmentRequest(
        csr=decode_csr(csr).public_bytes(serialization.Encoding.DER), requester="cli:enroll",
        client_chain=chain, possession_signature=proof, registration_id=registration_id,
        secret=secret, authority=authority, profile=profile), _method(method))
    _report_outcome(outcome, out, True, as_json)


def _report_outcome(outcome: Issued | Pending | Rejected, out: Path | None, with_chain: bool,
                    as_json: bool) -> None:
    from iotpki.core.outcomes import Pending, Rejected
    from iotpki.wire.chain import encode_pem_chain

    if isinstance(outcome, Pending):
        if as_json:
            emit_json({"pending": outcome.request_id, "retry_after": outcome.retry_after_seconds})
        else:
            console.print(f"pending approval: request {outcome.request_id} "
                          f"(iotpki request approve {outcome.request_id})")
        raise typer.Exit(4)
    if isinstance(outcome, Rejected):
        if as_json:
            emit_json({"refused": outcome.reason.value, "detail": outcome.detail})
        errors.print(f"[bold red]refused ({outcome.reason.value}):[/] {outcome.detail}",
                     highlight=False)
        raise typer.Exit(3)
    pem = outcome.certificate.public_bytes(serialization.Encoding.PEM)
    if with_chain:
        pem += encode_pem_chain(outcome.chain)
    if out is not None:
        out.write_bytes(pem)
    if as_json:
        emit_json({**certificate_fields(outcome.record), "pem": pem.decode()})
    elif out is None:
        sys.stdout.write(pem.decode())
    else:
        console.print(f"issued {outcome.record.authority}:{outcome.record.serial_hex} → {out}")


@app.command("list")
def list_(
    ctx: typer.Context,
    authority: str = typer.Option(None, "--ca"),
    status: CertificateStatus = typer.Option(None, "--status"),
    profile: str = typer.Option(None, "--profile"),
    subject: str = typer.Option(None, "--subject", help="Substring of the subject."),
    expires_before: str = typer.Option(None, "--expires-before", help="ISO 8601 with zone."),
    limit: int = typer.Option(100, "--limit", min=1, max=10000, help="At most this many."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many."),
    oldest_first: bool = typer.Option(False, "--oldest-first", help="Issue order."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Certificates matching the filters, newest first, a page at a time."""
    query = CertificateQuery(
        authority=authority, status=status, profile=profile, subject_contains=subject,
        expires_before=_aware(expires_before) if expires_before else None,
        limit=limit + 1, offset=offset, newest_first=not oldest_first)  # one more: any left?
    found = state(ctx).certificates().find(query)
    rows = [certificate_fields(r) for r in found[:limit]]
    if as_json:
        emit_json(rows)
        return
    table("certificates", ["authority", "serial", "subject", "profile", "status", "not after"],
          [(r["authority"], r["serial"], r["subject"], r["profile"], r["status"], r["not_after"])
           for r in rows])
    if len(found) > limit:
        order = "oldest" if oldest_first else "newest"
        errors.print(f"showing {offset + 1}-{offset + limit}, {order} first; more match: "
                     f"use --offset {offset + limit} or --limit", highlight=False)


@app.command()
def show(
    ctx: typer.Context,
    authority: str = typer.Argument(None, help="Issuing authority label."),
    serial: str = typer.Argument(None, help="Serial number in hex."),
    fingerprint: str = typer.Option(None, "--fingerprint", help="SHA-256 fingerprint (hex)."),
    pem: bool = typer.Option(False, "--pem", help="Print the certificate as PEM."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One certificate, by authority and serial or by fingerprint."""
    directory = state(ctx).certificates()
    if fingerprint:
        record = directory.get_by_fingerprint(fingerprint)
    elif authority and serial:
        record = directory.get(authority, _serial(serial))
    else:
        raise ValueError("give AUTHORITY SERIAL or --fingerprint")
    if pem:
        sys.stdout.write(record.certificate.public_bytes(serialization.Encoding.PEM).decode())
    elif as_json:
        emit_json(certificate_fields(record))
    else:
        details(f"certificate {record.authority}:{record.serial_hex}", certificate_fields(record))


@app.command()
def revoke(
    ctx: typer.Context, authority: str, serial: str,
    reason: str = typer.Option("unspecified", "--reason", help=f"One of {', '.join(REASONS)}."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke (or, with --reason certificateHold, hold) a certificate."""
    record = state(ctx).pki().revocation.revoke(
        authority, _serial(serial), parse_reason(reason), ACTOR, operator=True)
    _report(certificate_fields(record), as_json)


@app.command()
def release(ctx: typer.Context, authority: str, serial: str, as_json: bool = JSON_OPTION) -> None:
    """Release a certificate from hold; it is good again."""
    record = state(ctx).pki().revocation.release(authority, _serial(serial), ACTOR)
    _report(certificate_fields(record), as_json)


def _report(fields: dict[str, object], as_json: bool) -> None:
    if as_json:
        emit_json(fields)
    else:
        console.print(f"{fields['authority']}:{fields['serial']} is now {fields['status']}"
                      + (f" ({fields['revocation_reason']})" if fields["revocation_reason"] else ""))


def _method(name: str) -> MethodName:
    try:
        return enrollment_method(name)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; use one of {', '.join(ENROLLMENT_METHODS)}",
                                 param_hint="--method") from exc
