"""The plain-HTTP server: OCSP, CRLs, CA certificates, CMP and SCEP (RFC 8894 §4.1: SCEP
protects its messages itself and its clients speak plain HTTP), built from the adapters and
the PKI of `app.py`, plus the node's revocation worker.

Every node (process) runs a `RevocationWorker` thread: it polls the revocation counters
(one cheap query) so that OCSP caches drop changed certificates within `poll` seconds of a
revocation made on any node, publishes CRLs when due (delta CRLs soon after a change,
debounced; the CRL-number lock keeps nodes from publishing twice), and replaces delegated
OCSP responder certificates before they expire. A `NotificationWorker` thread delivers
webhooks and runs the expiry monitor (docs/webhooks.md, docs/lifecycle.md). The revocation
worker also revokes CMP certificates whose certConf did not come in time
(`protocols.cmp.confirmation`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iotpki.app import PKI, build_pki
from iotpki.core.ra.endpoint_enrollment import EndpointEnrollment
from iotpki.core.revocation.crl_distribution import CRLDistribution
from iotpki.listener import QueryGuard
from iotpki.protocols.cmp.routes import routes as cmp_routes
from iotpki.protocols.crl.routes import routes as crl_routes
from iotpki.protocols.ocsp.routes import routes as ocsp_routes
from iotpki.protocols.scep.routes import routes as scep_routes
from iotpki.protocols.scep.server import SCEPServer
from iotpki.settings import Settings

log = logging.getLogger(__name__)


class RevocationWorker:
    def __init__(self, pki: PKI, distribution: CRLDistribution, poll: float = 0.25,
                 publish_every: float = 1.0) -> None:
        self._pki = pki
        self._distribution = distribution
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
            self._step(self._pki.ocsp.refresh_changes)
            if time.monotonic() >= next_publish:
                self._step(self._publish_due)
                self._step(self._pki.cmp_confirmations.expire)  # RFC 9483 §4.1.1
                next_publish = time.monotonic() + self._publish_every
            self._stop.wait(self._poll)

    def _publish_due(self) -> None:
        counters = self._pki.ocsp.polled_counters()
        for label in sorted(self._distribution.issuing_authorities()):
            self._pki.crls.publish_if_due(label, counters.get(label, 0))
            self._pki.ocsp.responder(label)

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

    def __init__(self, pki: PKI, poll: float = 1.0, scan_every: float = 3600.0) -> None:
        self._pki = pki
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
                run_step(self._pki.expiry.scan)
                next_scan = time.monotonic() + self._scan_every
            run_step(self._pki.webhook_dispatcher.run_once)
            self._stop.wait(self._poll)


def create_app(pki: PKI, worker: bool = True) -> Starlette:
    distribution = pki.crl_distribution
    workers: list[RevocationWorker | NotificationWorker] = [
        RevocationWorker(pki, distribution),
        NotificationWorker(pki, scan_every=pki.settings.expiry_scan_seconds),
    ] if worker else []

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for background in workers:
            background.start()
        try:
            yield
        finally:
            for background in workers:
                background.stop()
            pki.close()

    routes = [*ocsp_routes(pki.ocsp, pki.clock), *crl_routes(distribution, pki.clock),
              *cmp_routes(pki.cmp), *scep_routes(scep_server(pki)), *health_routes(pki)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(QueryGuard)])


def scep_server(pki: PKI) -> SCEPServer:
    endpoints = EndpointEnrollment(pki.database.unit_of_work, pki.endpoints, pki.enrollment,
                                   pki.profiles, pki.clock)
    return SCEPServer(endpoints, pki.service_certificates, pki.enrollment.approval.poll,
                      pki.crl_distribution.current, pki.database.unit_of_work, pki.clock)


def health_routes(pki: PKI) -> list[Route]:
    """For orchestrators: `/healthz` answers 200 while the process serves; `/readyz` 200
    when the database answers too, else 503 (take the node out of rotation, keep it)."""

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        try:
            revision = await run_in_threadpool(pki.database.schema_revision)
        except Exception as exc:  # any failure of the database means not ready
            log.warning("readiness: database unavailable: %s", exc)
            revision = None
        if revision is None:
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ready\n")

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"])]


def app_from_environment() -> Starlette:
    """The uvicorn factory (`iotpki serve`): settings from IOTPKI_* variables."""
    # `iotpki serve` migrated the schema before starting the workers.
    return create_app(build_pki(Settings.from_environment(), migrate=False))
