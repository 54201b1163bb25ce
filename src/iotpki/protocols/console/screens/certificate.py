"""Screen 3, one certificate: its decoded fields, its chain, its live status from our own
OCSP responder (RFC 6960: a request for this certificate answered by the authority's
responder, as a relying party would get it), downloads (PEM, DER, PKCS #7 with the chain,
RFC 2315 certs-only), and revoke, hold or release with a reason."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from starlette.responses import RedirectResponse, Response

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.revocation.reasons import REASONS, parse_reason
from iotpki.protocols.console.context import PREFIX, Visit

SERIAL_DIGITS = 40
DOWNLOADS = {"pem": ("application/x-pem-file", "pem"), "der": ("application/pkix-cert", "cer"),
             "p7c": ("application/pkcs7-mime", "p7c")}


@dataclass(frozen=True)
class LiveStatus:
    status: str  # good, revoked, unknown, or the OCSP error
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None


def _owned(visit: Visit, authority: str, serial: str) -> tuple[Authority, CertificateRecord]:
    """The certificate if one of the organization's authorities issued it; else not found
    (another organization's certificate looks exactly like one that does not exist)."""
    text = serial.lower().removeprefix("0x").replace(":", "")
    if not text or len(text) > SERIAL_DIGITS or any(c not in "0123456789abcdef" for c in text):
        raise NotFoundError("no such certificate")
    try:
        owner = visit.services.authorities.get(authority)
        if owner.organization != visit.principal.organization:
            raise NotFoundError("no such certificate")
        return owner, visit.services.certificates.get(authority, int(text, 16))
    except NotFoundError:
        raise NotFoundError("no such certificate") from None


def live_status(visit: Visit, issuer: Authority, certificate: x509.Certificate) -> LiveStatus:
    """With a nonce (RFC 6960 §4.4.1), so the responder answers from the database now rather
    than from a pre-signed answer this process may hold from before a change."""
    request = ocsp.OCSPRequestBuilder().add_certificate(
        certificate, issuer.certificate, hashes.SHA256()).add_extension(
        x509.OCSPNonce(secrets.token_bytes(16)), critical=False).build()
    answer = visit.services.ocsp.respond(issuer.label, request.public_bytes(
        serialization.Encoding.DER))
    response = ocsp.load_der_ocsp_response(answer.der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return LiveStatus(response.response_status.name.lower())
    reason = response.revocation_reason
    return LiveStatus(response.certificate_status.name.lower(), response.this_update_utc,
                      response.next_update_utc, response.revocation_time_utc,
                      reason.value if reason is not None else None)


def _key(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__.removeprefix("_").replace("PublicKey", "")


def _names(names: Iterable[x509.GeneralName]) -> str:
    return ", ".join(str(n.value) for n in names)


def _value(value: x509.ExtensionType) -> str:
    """An extension as an operator reads it (RFC 5280 §4.2 names)."""
    if isinstance(value, x509.BasicConstraints):
        return f"CA: {value.ca}" + (f", path length {value.path_length}"
                                    if value.path_length is not None else "")
    if isinstance(value, x509.KeyUsage):
        flags = ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
        return ", ".join(f for f in flags if getattr(value, f))
    if isinstance(value, x509.ExtendedKeyUsage):
        return ", ".join(getattr(u, "_name", u.dotted_string) for u in value)
    if isinstance(value, x509.SubjectAlternativeName | x509.IssuerAlternativeName):
        return _names(value)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest.hex(":")
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return (value.key_identifier or b"").hex(":")
    if isinstance(value, x509.CRLDistributionPoints):
        return ", ".join(_names(p.full_name or ()) for p in value)
    if isinstance(value, x509.AuthorityInformationAccess):
        return ", ".join(f"{getattr(d.access_method, '_name', '')}: {d.access_location.value}"
                         for d in value)
    return str(value).removeprefix("<").removesuffix(">")


def _extensions(certificate: x509.Certificate) -> list[tuple[str, bool, str]]:
    return [(getattr(e.oid, "_name", None) or e.oid.dotted_string, e.critical,
             _value(e.value)[:600]) for e in certificate.extensions]


def show(visit: Visit, authority: str, serial: str) -> Response:
    issuer, record = _owned(visit, authority, serial)
    authorize(visit.principal, Action.READ)
    certificate = record.certificate
    may_revoke = visit.may(Action.REVOKE)
    return visit.page(
        "certificate.html", title=f"Certificate {record.serial_hex}", active="devices",
        record=record, issuer=issuer, certificate=certificate, key=_key(certificate),
        signature=certificate.signature_hash_algorithm.name
        if certificate.signature_hash_algorithm else "-",
        extensions=_extensions(certificate), chain=issuer.full_chain,
        live=live_status(visit, issuer, certificate),
        path=f"{PREFIX}/certificates/{record.authority}/{record.serial_hex}",
        may_revoke=may_revoke, reasons=[r for r in REASONS if r != "certificateHold"],
        held=record.status is CertificateStatus.HELD,
        good=record.status is CertificateStatus.GOOD, notice=_notice(visit))


def _notice(visit: Visit) -> str | None:
    done = visit.query.get("done")
    return {"revoke": "The certificate is revoked.", "hold": "The certificate is on hold.",
            "release": "The certificate is released: good again."}.get(done or "")


def download(visit: Visit, authority: str, serial: str, form: str) -> Response:
    issuer, record = _owned(visit, authority, serial)
    authorize(visit.principal, Action.READ)
    if form not in DOWNLOADS:
        raise NotFoundError(f"no download {form!r}: pem, der or p7c")
    certificate = record.certificate
    if form == "pem":
        body = certificate.public_bytes(serialization.Encoding.PEM)
    elif form == "der":
        body = record.der
    else:
        body = pkcs7.serialize_certificates([certificate, *issuer.full_chain],
                                            serialization.Encoding.DER)
    media_type, extension = DOWNLOADS[form]
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{record.serial_hex}.{extension}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def change_status(visit: Visit, authority: str, serial: str) -> Response:
    """Revoke (with the chosen reason), hold (certificateHold) or release a held one."""
    _, record = _owned(visit, authority, serial)
    authorize(visit.principal, Action.REVOKE)
    action = visit.form.get("action", "")
    revocation, actor = visit.services.revocation, visit.principal.actor
    if action == "release":
        revocation.release(record.authority, record.serial, actor)
    elif action in ("revoke", "hold"):
        try:
            reason = (x509.ReasonFlags.certificate_hold if action == "hold"
                      else parse_reason(visit.form.get("reason", "")))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        revocation.revoke(record.authority, record.serial, reason, actor)
    else:
        raise ConfigurationError("choose revoke, hold or release")
    return RedirectResponse(f"{PREFIX}/certificates/{record.authority}/{record.serial_hex}"
                            f"?done={action}", 303)
