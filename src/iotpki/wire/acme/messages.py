"""ACME message payloads (RFC 8555 §7.1, §7.3, §7.4, §7.6; RFC 9773 §4.1 certificate ids).

Decoders take the JWS payload (a JSON object) and return typed values or raise `JWSError`
with the problem type the server answers (`malformed`, `rejectedIdentifier`,
`unsupportedIdentifier`, `badCSR`, `badRevocationReason`). No I/O, no server state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.wire.acme.jws import JWSError, b64url_decode, b64url_encode

ERROR_PREFIX = "urn:ietf:params:acme:error:"
PROBLEM_JSON = "application/problem+json"
PEM_CHAIN = "application/pem-certificate-chain"
# RFC 8555 §6.7 and later registrations (RFC 8737, RFC 9773, the device-attest draft).
PROBLEM_TYPES = frozenset({
    "accountDoesNotExist", "alreadyRevoked", "badCSR", "badNonce", "badPublicKey",
    "badRevocationReason", "badSignatureAlgorithm", "caa", "compound", "connection", "dns",
    "externalAccountRequired", "incorrectResponse", "invalidContact", "malformed",
    "orderNotReady", "rateLimited", "rejectedIdentifier", "serverInternal", "tls",
    "unauthorized", "unsupportedContact", "unsupportedIdentifier", "userActionRequired",
    "badAttestationStatement"})
IDENTIFIER_TYPES = ("dns", "ip", "permanent-identifier")
MAX_IDENTIFIERS = 100
# RFC 5280 §5.3.1 reason codes a client may ask for (§7.6: others are badRevocationReason).
REVOCATION_REASONS = frozenset({0, 1, 3, 4, 5, 9})


@dataclass(frozen=True)
class Identifier:
    type: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


@dataclass(frozen=True)
class NewAccount:
    contact: tuple[str, ...]
    terms_agreed: bool
    only_return_existing: bool
    external_account_binding: Mapping[str, Any] | None


@dataclass(frozen=True)
class NewOrder:
    identifiers: tuple[Identifier, ...]
    replaces: str | None  # RFC 9773 §5: the ARI certificate id this order replaces


@dataclass(frozen=True)
class Revocation:
    certificate: x509.Certificate
    reason: int


def decode_new_account(payload: Mapping[str, Any]) -> NewAccount:
    """RFC 8555 §7.3."""
    contact = payload.get("contact", [])
    if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
        raise JWSError("malformed", "contact must be an array of URLs")
    for url in contact:
        if not url.startswith("mailto:") or "," in url or "?" in url:
            raise JWSError("unsupportedContact", f"only mailto: contacts are supported: {url!r}")
    terms = payload.get("termsOfServiceAgreed", False)
    existing = payload.get("onlyReturnExisting", False)
    if not isinstance(terms, bool) or not isinstance(existing, bool):
        raise JWSError("malformed", "termsOfServiceAgreed/onlyReturnExisting must be boolean")
    binding = payload.get("externalAccountBinding")
    if binding is not None and not isinstance(binding, Mapping):
        raise JWSError("malformed", "externalAccountBinding must be an object")
    return NewAccount(tuple(contact), terms, existing, binding)


def decode_identifier(value: Any) -> Identifier:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str) or \
            not isinstance(value.get("value"), str):
        raise JWSError("malformed", "an identifier is an object with type and value strings")
    kind, text = value["type"], value["value"]
    if kind not in IDENTIFIER_TYPES:
        raise JWSError("unsupportedIdentifier", f"identifier type {kind!r} is not supported")
    if kind == "dns":
        text = text.lower().rstrip(".")
    return Identifier(kind, text)


def decode_new_order(payload: Mapping[str, Any]) -> NewOrder:
    """RFC 8555 §7.4; notBefore/notAfter are refused (the profile decides validity)."""
    identifiers = payload.get("identifiers")
    if not isinstance(identifiers, list) or not identifiers:
        raise JWSError("malformed", "identifiers must be a non-empty array")
    if len(identifiers) > MAX_IDENTIFIERS:
        raise JWSError("rejectedIdentifier", f"at most {MAX_IDENTIFIERS} identifiers per order")
    if "notBefore" in payload or "notAfter" in payload:
        raise JWSError("malformed", "notBefore/notAfter are not supported: the profile "
                                    "decides the validity")
    decoded = tuple(dict.fromkeys(decode_identifier(i) for i in identifiers))
    replaces = payload.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise JWSError("malformed", "replaces must be a string")
    return NewOrder(decoded, replaces)


def decode_finalize(payload: Mapping[str, Any]) -> bytes:
    """RFC 8555 §7.4: `csr` is the base64url DER of a PKCS#10 request."""
    if "csr" not in payload:
        raise JWSError("malformed", "finalize needs a csr")
    try:
        return b64url_decode(payload["csr"], "csr")
    except JWSError as exc:
        raise JWSError("badCSR", exc.detail) from exc


def decode_revocation(payload: Mapping[str, Any]) -> Revocation:
    """RFC 8555 §7.6."""
    der = b64url_decode(payload.get("certificate"), "certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise JWSError("malformed", "certificate is not DER X.509") from exc
    reason = payload.get("reason", 0)
    if not isinstance(reason, int) or isinstance(reason, bool) or \
            reason not in REVOCATION_REASONS:
        raise JWSError("badRevocationReason", f"reason {reason!r} is not allowed")
    return Revocation(certificate, reason)


def decode_challenge_response(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """RFC 8555 §7.5.1: an empty object for http-01/dns-01/tls-alpn-01; the device-attest
    draft puts `attObj` in it."""
    return payload


def problem(kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 7807 problem document with the ACME error type (RFC 8555 §6.7)."""
    if kind not in PROBLEM_TYPES:
        raise ValueError(f"unknown ACME problem type {kind!r}")
    return {"type": ERROR_PREFIX + kind, "detail": detail, **extra}


def key_authorization(token: str, account_thumbprint: str) -> str:
    """RFC 8555 §8.1."""
    return f"{token}.{account_thumbprint}"


def dns01_digest(key_authz: str) -> str:
    """RFC 8555 §8.4: the TXT value, base64url(SHA-256(key authorization))."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(key_authz.encode("ascii"))
    return b64url_encode(digest.finalize())


def ari_certificate_id(certificate: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial DER content octets)."""
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        raise JWSError("malformed", "certificate has no authorityKeyIdentifier") from exc
    key_id = aki.value.key_identifier or b""
    serial = certificate.serial_number
    octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    return f"{b64url_encode(key_id)}.{b64url_encode(octets)}"


def decode_ari_certificate_id(text: str) -> tuple[bytes, int]:
    """(AKI keyIdentifier, serial) of an RFC 9773 certificate id; `JWSError(malformed)`."""
    key_part, dot, serial_part = text.partition(".")
    if not dot or not key_part or not serial_part:
        raise JWSError("malformed", "a certificate id is keyIdentifier.serial")
    key_id = b64url_decode(key_part, "keyIdentifier")
    octets = b64url_decode(serial_part, "serial")
    if not octets or octets[0] & 0x80:
        raise JWSError("malformed", "the serial is not a positive DER INTEGER")
    return key_id, int.from_bytes(octets, "big")
