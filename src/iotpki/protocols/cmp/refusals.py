"""How the CMP server refuses (RFC 9483 §3.6.4, RFC 9810 §5.2.3 PKIFailureInfo) and the
CRLReason codes an rr may ask for (§4.2); the header checks are in `protocols.cmp.header`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from cryptography import x509

from iotpki.core.errors import RefusalReason as R
from iotpki.wire.errors import PKIError

CLOCK_SKEW = timedelta(minutes=5)
# How each refusal of the core is told on the wire (RFC 9810 §5.2.3 PKIFailureInfo);
# total over RefusalReason (tests/test_refusals.py).
FAILURE_FOR_REASON: Mapping[R, str] = {
    R.MALFORMED_REQUEST: "badDataFormat", R.BAD_SIGNATURE: "badPOP",
    R.POSSESSION_NOT_PROVEN: "badPOP", R.UNSUPPORTED_KEY: "badAlg",
    R.KEY_NOT_ALLOWED: "badCertTemplate", R.SUBJECT_NOT_ALLOWED: "badCertTemplate",
    R.SAN_NOT_ALLOWED: "badCertTemplate", R.WILDCARD: "badCertTemplate",
    R.VALIDITY_EXCEEDS_ISSUER: "badCertTemplate", R.VALIDITY_EXCEEDS_PROFILE: "badCertTemplate",
    R.NAME_CONSTRAINTS: "badCertTemplate", R.DOMAIN_NOT_OWNED: "badCertTemplate",
    R.IDENTITY_MISMATCH: "badCertTemplate", R.UNKNOWN_PROFILE: "badRequest",
    R.UNKNOWN_AUTHORITY: "wrongAuthority", R.AUTHORITY_CANNOT_ISSUE: "wrongAuthority",
    R.NO_CLIENT_IDENTITY: "signerNotTrusted", R.UNTRUSTED_CHAIN: "signerNotTrusted",
    R.NOT_REGISTERED: "notAuthorized", R.REGISTRATION_CONSUMED: "notAuthorized",
    R.REGISTRATION_EXPIRED: "notAuthorized", R.REGISTRATION_LOCKED: "notAuthorized",
    R.CERTIFICATE_EXPIRED: "notAuthorized",
    R.METHOD_NOT_ALLOWED: "notAuthorized", R.REVOKED: "certRevoked",
    R.BAD_SECRET: "badMessageCheck", R.TOO_MANY_ATTEMPTS: "badRequest",
    R.APPROVAL_QUEUE_FULL: "badRequest", R.KEY_ENCRYPTION_UNAVAILABLE: "badCertTemplate",
    # The presented identity's revocation status cannot be established now (its issuer's
    # CRL is unreachable): a temporary failure, refused (fail closed).
    R.REVOCATION_UNKNOWN: "systemUnavail",
    # Manifest imports have no CMP form; listed so that the map stays total.
    R.MANIFEST_MALFORMED: "badRequest", R.MANIFEST_EXPIRED: "badRequest",
    R.REPLAYED: "badRequest", R.WRONG_RECIPIENT: "badRequest",
    R.UNTRUSTED_SUPPLIER: "badRequest", R.SIGNER_REVOKED: "badRequest",
    R.NOT_A_SIGNER: "badRequest", R.BAD_TARGET: "badRequest",
}


class CMPFailure(PKIError):
    """A request answered with an error message carrying `failure` (a PKIFailureInfo bit)."""

    def __init__(self, failure: str, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


class RequestRefusal(CMPFailure):
    """RFC 9483 §3.6.4: a refusal of the certificate request itself (its template, key or
    proof of possession), answered in an ip, cp or kup with status rejection rather than
    in an error message."""


_REASONS = {0: x509.ReasonFlags.unspecified, 1: x509.ReasonFlags.key_compromise,
            2: x509.ReasonFlags.ca_compromise, 3: x509.ReasonFlags.affiliation_changed,
            4: x509.ReasonFlags.superseded, 5: x509.ReasonFlags.cessation_of_operation,
            6: x509.ReasonFlags.certificate_hold, 9: x509.ReasonFlags.privilege_withdrawn,
            10: x509.ReasonFlags.aa_compromise}


def revocation_reason(code: int | None) -> x509.ReasonFlags:
    """RFC 5280 §5.3.1 CRLReason; removeFromCRL (8) cannot be asked for."""
    if code is None:
        return x509.ReasonFlags.unspecified
    if code not in _REASONS:
        raise CMPFailure("badRequest", f"revocation reason {code} is not allowed")
    return _REASONS[code]
