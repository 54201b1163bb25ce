"""RFC 7030 §3.5 on the EST listener (simpleenroll, simplereenroll and /fullcmc): the
challengePassword of a request, when it carries one, must be the TLS channel binding of the
connection it came on; an endpoint with `channel_binding: true` requires it. Shared by the
EST and CMC adapters, which map `ChannelBindingError` to their own answers.

What the connection offers comes from the ASGI TLS extension our HTTPS listener fills in
(`iotpki.https_server.tls_extension`): `tls_unique` (RFC 5929, bytes) on TLS 1.2,
`tls_exporter` (RFC 9266, 32 bytes, `iotpki.tls_exporter`) on TLS 1.3. Where neither can be
had (behind a TLS-terminating proxy, or a Python whose ssl objects the exporter cannot
reach) a challengePassword cannot be checked: it is then ignored, unless the endpoint
requires binding, which refuses the request (docs/est.md).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SessionBinding:
    kind: str  # "tls-unique" (TLS 1.2) or "tls-exporter" (TLS 1.3)
    value: bytes


def session_binding(scope: MutableMapping[str, Any]) -> SessionBinding | None:
    """The connection's channel binding, None where none can be had."""
    tls = scope.get("extensions", {}).get("tls") or {}
    for kind, field in (("tls-unique", "tls_unique"), ("tls-exporter", "tls_exporter")):
        value = tls.get(field)
        if value:
            return SessionBinding(kind, bytes(value))
    return None


def check_channel_binding(csr: bytes, binding: SessionBinding | None, required: bool) -> None:
    """Raise `ChannelBindingError` when the request's binding is wrong or missing."""
    try:
        password = challenge_password(csr)
    except DecodeError as exc:
        raise ChannelBindingError(400, R.MALFORMED_REQUEST, str(exc)) from exc
    if binding is None:
        if required:
            raise ChannelBindingError(403, R.POSSESSION_NOT_PROVEN, "this endpoint requires "
                                      "channel binding (RFC 7030 §3.5), which cannot be "
                                      "checked on this connection (no tls-unique or "
                                      "tls-exporter): connect to the server's TLS directly")
        return
    if password is None:
        if required:
            raise ChannelBindingError(403, R.POSSESSION_NOT_PROVEN, "this endpoint requires "
                                      f"the {binding.kind} value in challengePassword "
                                      "(RFC 7030 §3.5)")
        return
    if not binding_matches(password, binding.value):
        raise ChannelBindingError(403, R.POSSESSION_NOT_PROVEN, "challengePassword is not the "
                                  f"{binding.kind} value of this TLS session (RFC 7030 §3.5"
                                  + (", RFC 9266)" if binding.kind == "tls-exporter" else ")"))
