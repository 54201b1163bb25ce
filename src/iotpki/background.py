"""The background work of every node (process) serving the plain-HTTP listener.

A `RevocationWorker` thread polls the revocation counters (one cheap query) so that OCSP
caches drop changed certificates within `poll` seconds of a revocation made on any node,
publishes CRLs when due (delta CRLs soon after a change, debounced; the CRL-number lock
keeps nodes from publishing twice) and the CRL shards whose build lease it takes
(`core.revocation.crl_shards`), replaces delegated OCSP responder certificates before
they expire, and revokes CMP certificates whose certConf did not come in time
(`protocols.cmp.confirmation`). A `NotificationWorker` thread delivers webhooks and runs
the expiry monitor (docs/webhooks.md, docs/lifecycle.md). Both take the services they
drive, nothing more; `app.http_app` starts them with the application.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from iotpki.core.revocation.crl import CRLPublisher
from iotpki.core.revocation.crl_distribution import CRLDistribution
from iotpki.core.revocation.crl_shards import CRLShardBuilds
from iotpki.core.revocation.ocsp import OCSPResponder

log = logging.getLogger(__name__)


class RevocationWorker:
    """Refreshes the OCSP caches, publishes due CRLs, renews delegated OCSP responders and
    revokes certificates whose certConf did not come in time (`expire_unconfirmed`)."""

    def __init__(self, ocsp: OCSPResponder, crls: CRLPublisher, distribution: CRLDistribution,
                 expire_unconfirmed: Callable[[], object], poll: float = 0.25,
                 publish_every: float = 1.0, shards: CRLShardBuilds | None = None) -> None:
        self._ocsp = ocsp
        self._crls = crls
        self._shards = shards
        self._distribution = distribution
        self._expire_unconfirmed = expire_unconfirmed
        self._poll = poll
        self._publish_every = publish_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="revocation-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_publish = 0.0
        while not self._stop.is_set():
            self._step(self._ocsp.refresh_changes)
            if time.monotonic() >= next_publish:
                self._step(self._publish_due)
                self._step(self._expire_unconfirmed)  # RFC 9483 §4.1.1
                next_publish = time.monotonic() + self._publish_every
            self._stop.wait(self._poll)

    def _publish_due(self) -> None:
        counters = self._ocsp.polled_counters()
        marks: dict[str, int] = {}
        if self._shards is not None:
            self._shards.run_once()  # the CRL shards this node's leases give it
            marks = self._shards.own_marks  # sharded authorities' own CRLs
        for label in sorted(self._distribution.issuing_authorities()):
            self._crls.publish_if_due(label, marks.get(label, counters.get(label, 0)))
            self._ocsp.responder(label)

    @staticmethod
    def _step(action: Callable[[], object]) -> None:
        run_step(action)


def run_step(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # keep the node serving; the next round tries again
        log.exception("background step %s failed", getattr(action, "__qualname__", action))


class NotificationWorker:
    """Each node fans outbox events out to webhook deliveries and sends the due ones every
    `poll` seconds, and runs the expiry monitor every `scan_every` seconds. Nodes share the
    work through the database: locked event batches, claimed deliveries, noted expiries."""

    def __init__(self, scan: Callable[[], object], deliver: Callable[[], object],
                 poll: float = 1.0, scan_every: float = 3600.0) -> None:
        self._scan = scan  # the expiry monitor
        self._deliver = deliver  # the webhook dispatcher's round
        self._poll = poll
        self._scan_every = scan_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notification-worker",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_scan:
                run_step(self._scan)
                next_scan = time.monotonic() + self._scan_every
            run_step(self._deliver)
            self._stop.wait(self._poll)
