"""The agent's errors, under the project's root `PKIError`."""

from __future__ import annotations

from iotpki.wire.errors import PKIError


class AgentError(PKIError):
    """An enrollment or renewal that did not succeed."""


class RefusedError(AgentError):
    """The server answered and said no (EST 4xx, CMP rejection or error message)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"refused ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class PendingError(AgentError):
    """The request waits on an operator (EST 202, CMP waiting); ask again later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"pending approval; retry after {retry_after:g} s")
        self.retry_after = retry_after


class TransportError(AgentError):
    """The server could not be reached or answered with a server fault."""


class UntrustedAnswerError(AgentError):
    """An answer whose protection, chain or trust anchor does not check out."""
