"""CMP codec for the Lightweight CMP profile (RFC 9483): messages (RFC 9810 §5), CRMF
requests (RFC 4211), protection (RFC 9810 §5.1.3, RFC 9481). No I/O, no server
dependencies: the server adapter and the device agent both use it."""

from iotpki.wire.cmp.crmf import CRMFRequest
from iotpki.wire.cmp.messages import (
    CertConfirmation,
    CertRequests,
    CertResponse,
    CertResponses,
    ErrorReport,
    GeneralMessage,
    GeneralResponse,
    Header,
    P10Request,
    PKIMessage,
    PollRequest,
    RevocationRequest,
    decode_pki_message,
)

__all__ = [
    "CRMFRequest",
    "CertConfirmation",
    "CertRequests",
    "CertResponse",
    "CertResponses",
    "ErrorReport",
    "GeneralMessage",
    "GeneralResponse",
    "Header",
    "P10Request",
    "PKIMessage",
    "PollRequest",
    "RevocationRequest",
    "decode_pki_message",
]
