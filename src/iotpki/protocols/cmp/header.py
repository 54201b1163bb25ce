"""Header checks of the Lightweight CMP profile (RFC 9483 §3.1, §3.5), in the order the
server applies them:

1. `check_header`: what the header alone decides (before any protection is checked):
   pvno, transactionID, senderNonce, messageTime, protectionAlg, the generalInfo items
   implicitConfirm and confirmWaitTime, and recipNonce in the first message of a
   transaction.
2. `check_protector`: once the protection verified, that the header names its protector:
   signature: sender is the protection certificate's subject and senderKID its
   SubjectKeyIdentifier; MAC: sender is a directoryName.

Which PKIFailureInfo bit answers each (RFC 9810 §5.2.3), where RFC 9483 names none:
a header field of the wrong form is badDataFormat; a header that misnames the protector is
badMessageCheck (the protection cannot be attributed).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509

from iotpki.protocols.cmp.refusals import CMPFailure
from iotpki.wire.cmp.messages import Header

IMPLICIT_CONFIRM = "1.3.6.1.5.5.7.4.13"  # id-it-implicitConfirm (RFC 9810 §5.1.1.1)
CONFIRM_WAIT_TIME = "1.3.6.1.5.5.7.4.14"  # id-it-confirmWaitTime (RFC 9810 §5.1.1.2)
NULL = b"\x05\x00"
GENERALIZED_TIME = 0x18
CERT_REQUESTS = frozenset({"ir", "cr", "kur", "p10cr"})
# Messages that open a transaction (RFC 9483 §3.1: recipNonce absent, a new transactionID).
FIRST_MESSAGES = CERT_REQUESTS | {"rr", "genm"}


def check_header(header: Header, body_type: str, now: datetime, skew: timedelta) -> None:
    """RFC 9483 §3.1 and §3.5: the checks that need neither the key nor the database."""
    if header.pvno not in (2, 3):
        raise CMPFailure("unsupportedVersion", f"pvno {header.pvno} is not cmp2000 or cmp2021")
    if not header.transaction_id or len(header.transaction_id) > 64:
        raise CMPFailure("badDataFormat", "RFC 9483 §3.1: a transactionID (128 random bits in "
                                          "the first message) is required")
    if not header.sender_nonce or not 16 <= len(header.sender_nonce) <= 64:
        raise CMPFailure("badSenderNonce", "a senderNonce of at least 128 bits is required")
    if header.message_time is not None and abs(header.message_time - now) > skew:
        raise CMPFailure("badTime", f"messageTime {header.message_time.isoformat()} is more "
                                    f"than {int(skew.total_seconds())} s from ours")
    if header.protection_algorithm is None:
        raise CMPFailure("badMessageCheck", "RFC 9483 §3.2: requests must be protected")
    _check_general_info(header, body_type)
    if body_type in FIRST_MESSAGES and header.recip_nonce is not None:
        raise CMPFailure("badRecipientNonce", "RFC 9483 §3.1: the first message of a "
                                              "transaction has no recipNonce")


def _check_general_info(header: Header, body_type: str) -> None:
    """RFC 9483 §3.1 generalInfo: implicitConfirm only in ir/cr/kur/p10cr, its value
    NULL; confirmWaitTime a GeneralizedTime, never with implicitConfirm (it is for
    answers that require confirmation)."""
    values = dict(header.general_info)
    if IMPLICIT_CONFIRM in values:
        value = values[IMPLICIT_CONFIRM]
        if value is not None and value != NULL:  # an absent value is tolerated
            raise CMPFailure("badDataFormat", "RFC 9483 §3.1: ImplicitConfirmValue must be NULL")
        if body_type not in CERT_REQUESTS:
            raise CMPFailure("badRequest", f"RFC 9483 §3.1: implicitConfirm is prohibited in "
                                           f"{body_type}")
    if CONFIRM_WAIT_TIME in values:
        value = values[CONFIRM_WAIT_TIME]
        if value is None or value[0] != GENERALIZED_TIME:
            raise CMPFailure("badDataFormat", "RFC 9483 §3.1: ConfirmWaitTimeValue must be a "
                                              "GeneralizedTime")
        if IMPLICIT_CONFIRM in values:
            raise CMPFailure("badRequest", "RFC 9483 §3.1: confirmWaitTime together with "
                                           "implicitConfirm")


def check_protector(header: Header, signer: x509.Certificate | None) -> None:
    """RFC 9483 §3.1: the header names who protected the message; `signer` is the
    verified protection certificate, None for MAC protection."""
    sender = header.sender_name
    if signer is None:
        if sender is None:
            raise CMPFailure("badMessageCheck", "RFC 9483 §3.1: the sender of a MAC-protected "
                                                "message is a directoryName")
        return
    try:
        subject = signer.subject.public_bytes()
    except ValueError as exc:  # a certificate from the client: its name may not parse
        raise CMPFailure("badDataFormat", "the protection certificate's subject cannot be "
                                          "read") from exc
    if sender != subject:
        raise CMPFailure("badMessageCheck", "RFC 9483 §3.1: the sender must be the subject "
                                            "of the CMP protection certificate")
    key_id = subject_key_id(signer)
    if key_id is not None and header.sender_kid != key_id:
        raise CMPFailure("badMessageCheck", "RFC 9483 §3.1: senderKID must be the "
                                            "SubjectKeyIdentifier of the CMP protection "
                                            "certificate")


def subject_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None
