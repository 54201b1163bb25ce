"""A SCEP message refused with a failInfo (RFC 8894 §3.2.1.4): the server answers it with a
CertRep FAILURE carrying that failInfo."""

from __future__ import annotations

from iotpki.wire.errors import PKIError
from iotpki.wire.scep.attributes import FailInfo

__all__ = ["SCEPFailure", "WrongRecipientError"]


class SCEPFailure(PKIError):
    def __init__(self, fail_info: FailInfo, detail: str) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.detail = detail


class WrongRecipientError(SCEPFailure):
    """The pkcsPKIEnvelope is for another certificate than the RA's (badMessageCheck)."""

    def __init__(self, detail: str) -> None:
        super().__init__(FailInfo.BAD_MESSAGE_CHECK, detail)
