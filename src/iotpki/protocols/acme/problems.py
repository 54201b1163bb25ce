"""ACME errors (RFC 8555 §6.7): every refusal is an RFC 7807 problem document whose type is
an `urn:ietf:params:acme:error:` name, with the HTTP status the RFC's examples use.

`PROBLEM_FOR_REASON` maps every core `RefusalReason` to its ACME type; it is total
(tests/test_refusals.py). Problems found by the adapter itself (bad JWS, bad nonce, a
challenge that fails) carry the reason they are audited under, from the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iotpki.core.errors import RefusalReason as R
from iotpki.wire.acme.messages import problem

_BAD_CSR = {R.MALFORMED_REQUEST, R.BAD_SIGNATURE, R.UNSUPPORTED_KEY, R.KEY_NOT_ALLOWED,
            R.SUBJECT_NOT_ALLOWED}
_REJECTED = {R.SAN_NOT_ALLOWED, R.WILDCARD, R.NAME_CONSTRAINTS, R.DOMAIN_NOT_OWNED}
_UNAUTHORIZED = {R.NO_CLIENT_IDENTITY, R.NOT_REGISTERED, R.REGISTRATION_CONSUMED,
                 R.REGISTRATION_EXPIRED, R.REVOKED, R.CERTIFICATE_EXPIRED, R.BAD_SECRET,
                 R.REGISTRATION_LOCKED, R.IDENTITY_MISMATCH, R.METHOD_NOT_ALLOWED}
# device-attest-01: the attestation does not chain, or does not prove the key.
_ATTESTATION = {R.UNTRUSTED_CHAIN, R.POSSESSION_NOT_PROVEN}
_RATE = {R.TOO_MANY_ATTEMPTS, R.APPROVAL_QUEUE_FULL}
_SERVER = {R.UNKNOWN_PROFILE, R.UNKNOWN_AUTHORITY, R.AUTHORITY_CANNOT_ISSUE,
           R.REVOCATION_UNKNOWN}
_MALFORMED = {R.VALIDITY_EXCEEDS_ISSUER, R.VALIDITY_EXCEEDS_PROFILE,
              R.KEY_ENCRYPTION_UNAVAILABLE,
              # manifest imports have no ACME form:
              R.MANIFEST_MALFORMED, R.MANIFEST_EXPIRED, R.REPLAYED, R.WRONG_RECIPIENT,
              R.UNTRUSTED_SUPPLIER, R.SIGNER_REVOKED, R.NOT_A_SIGNER, R.BAD_TARGET}
# The ACME error type of every refusal of the core (total over RefusalReason).
PROBLEM_FOR_REASON: Mapping[R, str] = {
    **dict.fromkeys(_BAD_CSR, "badCSR"), **dict.fromkeys(_REJECTED, "rejectedIdentifier"),
    **dict.fromkeys(_UNAUTHORIZED, "unauthorized"),
    **dict.fromkeys(_ATTESTATION, "badAttestationStatement"),
    **dict.fromkeys(_RATE, "rateLimited"), **dict.fromkeys(_SERVER, "serverInternal"),
    **dict.fromkeys(_MALFORMED, "malformed")}

STATUS_FOR_PROBLEM: Mapping[str, int] = {
    "unauthorized": 403, "externalAccountRequired": 403, "orderNotReady": 403,
    "userActionRequired": 403, "rateLimited": 429, "serverInternal": 500,
    "accountDoesNotExist": 400}
# The reason a problem of the adapter's own is audited under, when the caller names none.
_REASON_FOR_PROBLEM: Mapping[str, R] = {
    "unauthorized": R.IDENTITY_MISMATCH, "accountDoesNotExist": R.NO_CLIENT_IDENTITY,
    "externalAccountRequired": R.NO_CLIENT_IDENTITY, "badNonce": R.REPLAYED,
    "rejectedIdentifier": R.SAN_NOT_ALLOWED, "unsupportedIdentifier": R.SAN_NOT_ALLOWED,
    "badCSR": R.MALFORMED_REQUEST, "rateLimited": R.TOO_MANY_ATTEMPTS,
    "incorrectResponse": R.POSSESSION_NOT_PROVEN, "connection": R.POSSESSION_NOT_PROVEN,
    "dns": R.POSSESSION_NOT_PROVEN, "tls": R.POSSESSION_NOT_PROVEN,
    "badAttestationStatement": R.POSSESSION_NOT_PROVEN,
    "badSignatureAlgorithm": R.BAD_SIGNATURE, "badPublicKey": R.UNSUPPORTED_KEY}


class ACMEProblem(Exception):
    """A refused ACME request: its problem type, detail, HTTP status, audited reason."""

    def __init__(self, kind: str, detail: str, reason: R | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status or STATUS_FOR_PROBLEM.get(kind, 400)
        self.reason = reason or _REASON_FOR_PROBLEM.get(kind, R.MALFORMED_REQUEST)
        self.extra = extra

    def document(self) -> dict[str, Any]:
        return problem(self.kind, self.detail, **self.extra)


def refused(reason: R, detail: str, **extra: Any) -> ACMEProblem:
    """The problem for a core refusal."""
    return ACMEProblem(PROBLEM_FOR_REASON[reason], detail, reason, **extra)


class NotFound(ACMEProblem):
    """RFC 8555 §7: an unknown resource URL is 404 (a malformed problem)."""

    def __init__(self, detail: str) -> None:
        super().__init__("malformed", detail, R.MALFORMED_REQUEST, 404)
