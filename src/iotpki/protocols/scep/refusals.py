"""How the SCEP server refuses: a CertRep FAILURE carries one failInfo (RFC 8894
§3.2.1.4), and the core's refusal detail in failInfoText. Total over RefusalReason
(tests/test_refusals.py).

SCEP has five failInfo values; most refusals of who may ask are badRequest ("the
transaction was not permitted"), a key or algorithm we do not take badAlg, a signature
or proof of possession that does not verify badMessageCheck, a presented certificate
that is not ours badCertId, and an expired one badTime.
"""

from __future__ import annotations

from collections.abc import Mapping

from iotpki.core.errors import RefusalReason as R
from iotpki.wire.scep.attributes import FailInfo as F

_BAD_ALG = {R.UNSUPPORTED_KEY, R.KEY_NOT_ALLOWED}
_BAD_MESSAGE_CHECK = {R.BAD_SIGNATURE, R.POSSESSION_NOT_PROVEN, R.WRONG_RECIPIENT}
_BAD_CERT_ID = {R.NOT_REGISTERED, R.UNTRUSTED_CHAIN, R.NO_CLIENT_IDENTITY}
_BAD_TIME = {R.CERTIFICATE_EXPIRED}
_BAD_REQUEST = {
    R.MALFORMED_REQUEST, R.SUBJECT_NOT_ALLOWED, R.SAN_NOT_ALLOWED, R.WILDCARD,
    R.VALIDITY_EXCEEDS_ISSUER, R.VALIDITY_EXCEEDS_PROFILE, R.UNKNOWN_PROFILE,
    R.UNKNOWN_AUTHORITY, R.AUTHORITY_CANNOT_ISSUE, R.NAME_CONSTRAINTS, R.DOMAIN_NOT_OWNED,
    R.REGISTRATION_CONSUMED, R.REGISTRATION_EXPIRED, R.REVOKED, R.REVOCATION_UNKNOWN,
    R.BAD_SECRET, R.REGISTRATION_LOCKED, R.TOO_MANY_ATTEMPTS, R.APPROVAL_QUEUE_FULL,
    R.IDENTITY_MISMATCH, R.METHOD_NOT_ALLOWED, R.KEY_ENCRYPTION_UNAVAILABLE,
    # manifest imports have no SCEP form (a replayed SCEP message is refused as badRequest):
    R.MANIFEST_MALFORMED, R.MANIFEST_EXPIRED, R.REPLAYED, R.UNTRUSTED_SUPPLIER,
    R.SIGNER_REVOKED, R.NOT_A_SIGNER, R.BAD_TARGET}
FAIL_INFO_FOR_REASON: Mapping[R, F] = {
    **dict.fromkeys(_BAD_REQUEST, F.BAD_REQUEST),
    **dict.fromkeys(_BAD_ALG, F.BAD_ALG), **dict.fromkeys(_BAD_MESSAGE_CHECK, F.BAD_MESSAGE_CHECK),
    **dict.fromkeys(_BAD_CERT_ID, F.BAD_CERT_ID), **dict.fromkeys(_BAD_TIME, F.BAD_TIME)}

# The reason audited for a message the adapter refuses itself (before the core decides).
REASON_FOR_FAIL_INFO: Mapping[F, R] = {
    F.BAD_ALG: R.MALFORMED_REQUEST, F.BAD_MESSAGE_CHECK: R.BAD_SIGNATURE,
    F.BAD_REQUEST: R.MALFORMED_REQUEST, F.BAD_TIME: R.MALFORMED_REQUEST,
    F.BAD_CERT_ID: R.NOT_REGISTERED}
