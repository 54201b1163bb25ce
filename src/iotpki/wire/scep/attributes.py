"""SCEP vocabulary (RFC 8894 §3.2.1): the authenticated attributes of a pkiMessage and the
values they take.

All are attributes of the SignerInfo of the outer SignedData, under id-VeriSign
(2.16.840.1.113733) pki(1) attributes(9):

| attribute | OID suffix | type |
|---|---|---|
| messageType (§3.2.1.2) | 2 | PrintableString, a decimal number |
| pkiStatus (§3.2.1.3) | 3 | PrintableString |
| failInfo (§3.2.1.4) | 4 | PrintableString |
| senderNonce (§3.2.1.5) | 5 | OCTET STRING (16 octets) |
| recipientNonce (§3.2.1.5) | 6 | OCTET STRING |
| transactionID (§3.2.1.1) | 7 | PrintableString |

failInfoText (§3.2.1.4) is id-pkix 24 1 (1.3.6.1.5.5.7.24.1), UTF8String.
"""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["FAIL_INFO", "FAIL_INFO_TEXT", "MESSAGE_TYPE", "NONCE_SIZE", "PKI_STATUS",
           "RECIPIENT_NONCE", "SENDER_NONCE", "TRANSACTION_ID", "FailInfo", "MessageType",
           "PKIStatus"]

_ATTRIBUTES = "2.16.840.1.113733.1.9"
MESSAGE_TYPE = f"{_ATTRIBUTES}.2"
PKI_STATUS = f"{_ATTRIBUTES}.3"
FAIL_INFO = f"{_ATTRIBUTES}.4"
SENDER_NONCE = f"{_ATTRIBUTES}.5"
RECIPIENT_NONCE = f"{_ATTRIBUTES}.6"
TRANSACTION_ID = f"{_ATTRIBUTES}.7"
FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"
NONCE_SIZE = 16  # §3.2.1.5: 16 octets


class MessageType(IntEnum):
    """§3.2.1.2 (IANA "SCEP Message Types")."""

    CERT_REP = 3
    RENEWAL_REQ = 17
    PKCS_REQ = 19
    CERT_POLL = 20  # GetCertInitial in older drafts
    GET_CERT = 21
    GET_CRL = 22


class PKIStatus(Enum):
    """§3.2.1.3."""

    SUCCESS = "0"
    FAILURE = "2"
    PENDING = "3"


class FailInfo(Enum):
    """§3.2.1.4."""

    BAD_ALG = "0"  # unrecognized or unsupported algorithm
    BAD_MESSAGE_CHECK = "1"  # integrity check (signature) failed
    BAD_REQUEST = "2"  # transaction not permitted or supported
    BAD_TIME = "3"  # signingTime not close enough to the system time
    BAD_CERT_ID = "4"  # no certificate could be identified matching the criteria
