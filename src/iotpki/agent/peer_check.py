"""The peer check on the device (DESIGN.md §1 step 5): before delivering data, a sensor
accepts a service only if its chain validates to our pinned anchors, no certificate of
the chain is revoked (OCSP, else CRL, each cached until its nextUpdate), and it names a
domain our own certificate names (`iotpki.wire.peer.check_peer`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from cryptography import x509

from iotpki.agent.errors import AgentError
from iotpki.agent.keystore import KeyStore
from iotpki.agent.ocsp_cache import RevocationChecker
from iotpki.agent.trust import Trust
from iotpki.wire.peer import AuthorizedPeer, RevocationSource, check_peer


class PeerChecker:
    def __init__(self, store: KeyStore, trust: Trust, revocation: RevocationSource | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._trust = trust
        self._owned = RevocationChecker() if revocation is None else None
        self.revocation: RevocationSource = revocation or self._owned  # type: ignore[assignment]
        self._clock = clock

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def check(self, peer_chain: Sequence[x509.Certificate]) -> AuthorizedPeer:
        """The peer and the domains we share, or `PeerRejectedError` with the reason."""
        identity = self._store.current()
        if identity is None:
            raise AgentError("no certificate of our own yet: enroll first")
        return check_peer(identity.certificate, peer_chain, self._trust.anchors,
                          self.revocation, self._clock())
