"""How the CMC server refuses: a PKIResponse whose CMCStatusInfoV2 is failed with a
CMCFailInfo (RFC 5272 §6.1.1, §6.1.4), for every refusal of the core (`FAIL_INFO_FOR_REASON`,
total over `RefusalReason`, tests/test_refusals.py) and for those of the adapter itself
(`CMCFailure`). Over EST, a refusal is also an HTTP 4xx/5xx (RFC 7030 §4.3.2,
`HTTP_STATUS`)."""

from __future__ import annotations

from collections.abc import Mapping

from iotpki.core.errors import RefusalReason as R
from iotpki.wire.errors import PKIError

_BAD_REQUEST = {R.MALFORMED_REQUEST, R.SUBJECT_NOT_ALLOWED, R.SAN_NOT_ALLOWED, R.WILDCARD,
                R.VALIDITY_EXCEEDS_ISSUER, R.VALIDITY_EXCEEDS_PROFILE, R.NAME_CONSTRAINTS,
                R.DOMAIN_NOT_OWNED, R.KEY_ENCRYPTION_UNAVAILABLE,
                # manifest imports have no CMC form:
                R.MANIFEST_MALFORMED, R.MANIFEST_EXPIRED, R.REPLAYED, R.WRONG_RECIPIENT,
                R.UNTRUSTED_SUPPLIER, R.SIGNER_REVOKED, R.NOT_A_SIGNER, R.BAD_TARGET}
# Who may ask: the identity (signer certificate, registration and its secret) is not good.
_BAD_IDENTITY = {R.NO_CLIENT_IDENTITY, R.NOT_REGISTERED, R.REGISTRATION_CONSUMED,
                 R.REGISTRATION_EXPIRED, R.REGISTRATION_LOCKED, R.UNTRUSTED_CHAIN, R.REVOKED,
                 R.CERTIFICATE_EXPIRED, R.BAD_SECRET, R.IDENTITY_MISMATCH,
                 R.METHOD_NOT_ALLOWED}
_INTERNAL = {R.UNKNOWN_PROFILE, R.UNKNOWN_AUTHORITY, R.AUTHORITY_CANNOT_ISSUE}
_TRY_LATER = {R.TOO_MANY_ATTEMPTS, R.APPROVAL_QUEUE_FULL, R.REVOCATION_UNKNOWN}
# The CMCFailInfo of every refusal of the core: total over RefusalReason.
FAIL_INFO_FOR_REASON: Mapping[R, str] = {
    **dict.fromkeys(_BAD_REQUEST, "badRequest"), **dict.fromkeys(_BAD_IDENTITY, "badIdentity"),
    **dict.fromkeys(_INTERNAL, "internalCAError"), **dict.fromkeys(_TRY_LATER, "tryLater"),
    R.BAD_SIGNATURE: "popFailed", R.POSSESSION_NOT_PROVEN: "popFailed",
    R.UNSUPPORTED_KEY: "badAlg", R.KEY_NOT_ALLOWED: "badAlg"}

# RFC 7030 §4.3.2: a refused Full PKI Request is an HTTP 4xx or 5xx with the CMC response.
HTTP_STATUS: Mapping[str, int] = {
    "badAlg": 400, "badMessageCheck": 400, "badRequest": 400, "badTime": 400,
    "badCertId": 400, "unsupportedExt": 400, "mustArchiveKeys": 400, "badIdentity": 403,
    "popRequired": 400, "popFailed": 400, "noKeyReuse": 400, "internalCAError": 503,
    "tryLater": 503, "authDataFail": 400}

# The audited reason of an adapter refusal (the failInfo goes into the audit detail).
REASON_FOR_FAIL_INFO: Mapping[str, R] = {
    "badAlg": R.BAD_SIGNATURE, "badMessageCheck": R.BAD_SIGNATURE,
    "badRequest": R.MALFORMED_REQUEST, "badTime": R.MALFORMED_REQUEST,
    "badCertId": R.NOT_REGISTERED, "unsupportedExt": R.MALFORMED_REQUEST,
    "mustArchiveKeys": R.MALFORMED_REQUEST, "badIdentity": R.NO_CLIENT_IDENTITY,
    "popRequired": R.POSSESSION_NOT_PROVEN, "popFailed": R.POSSESSION_NOT_PROVEN,
    "noKeyReuse": R.KEY_NOT_ALLOWED, "internalCAError": R.AUTHORITY_CANNOT_ISSUE,
    "tryLater": R.TOO_MANY_ATTEMPTS, "authDataFail": R.MALFORMED_REQUEST}


class CMCFailure(PKIError):
    """A request (or one body part of it) answered failed with `fail_info`."""

    def __init__(self, fail_info: str, detail: str, body_parts: tuple[int, ...] = (0,),
                 reason: R | None = None) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.detail = detail
        self.body_parts = body_parts
        self.reason = reason or REASON_FOR_FAIL_INFO[fail_info]
