"""RFC 7030 §3.5 on the EST listener: the challengePassword of a request, when it carries
one, must be the TLS channel binding of the connection it came on; an endpoint with
`channel_binding: true` requires it.

What the connection offers comes from the ASGI TLS extension our HTTPS listener fills in
(`iotpki.https_server.tls_extension`: `tls_unique`, bytes, on TLS 1.2). Python's `ssl`
module gives tls-unique (`SSLObject.get_channel_binding`) but no keying-material exporter,
so the RFC 9266 tls-exporter binding of TLS 1.3 cannot be computed: on TLS 1.3 (and behind
a TLS-terminating proxy) a challengePassword cannot be checked. It is then ignored, unless
the endpoint requires binding, which refuses the request (docs/est.md).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from iotpki.core.errors import RefusalReason as R
from iotpki.wire.channel_binding import binding_matches, challenge_password
from iotpki.wire.errors import DecodeError


class ChannelBindingError(Exception):
    def __init__(self, status: int, reason: R, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def session_binding(scope: MutableMapping[str, Any]) -> bytes | None:
    """The connection's tls-unique (TLS 1.2), None where none can be had."""
    tls = scope.get("extensions", {}).get("tls") or {}
    value = tls.get("tls_unique")
    return bytes(value) if value else None


def check_channel_binding(csr: bytes, binding: bytes | None, required: bool) -> None:
    """Raise `ChannelBindingError` when the request's binding is wrong or missing."""
    try:
        password = challenge_password(csr)
    except DecodeError as exc:
        raise ChannelBindingError(400, R.MALFORMED_REQUEST, str(exc)) from exc
    if binding is None:
        if required:
            raise ChannelBindingError(403, R.POSSESSION_NOT_PROVEN, "this endpoint requires "
                                      "channel binding (RFC 7030 §3.5), which this server "
                                      "checks on TLS 1.2 only (tls-unique); connect with TLS 1.2")
        return
    if password is None:
        if required:
            raise ChannelBindingError(403, R.POSSESSION_NOT_PROVEN, "this endpoint requires "
                                      "the tls-unique value in challengePassword (RFC 7030 §3.5)")
        return
    if not binding_matches(password, binding):
        raise ChannelBindingError(403, R.POSSESSION_NOT_PROVEN, "challengePassword is not the "
                                  "tls-unique value of this TLS session (RFC 7030 §3.5)")
