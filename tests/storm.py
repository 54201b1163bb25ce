"""An issuance storm for failover tests and `bench/scale.py`: client threads that issue
batches through `issue_many` as fast as they can and keep every certificate they received.
A batch that fails (the primary died under it) is the client's to send again, as a real
client would: a failed answer never counts as received, whatever the database kept."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


@dataclass
class Received:
    serial: int
    fingerprint: str
    at: float  # time.monotonic() when the client had it
    node: int  # which of the storm's nodes issued it


@dataclass
class IssuanceStorm:
    nodes: list[PKI]  # one client thread per node
    batch: int = 10
    received: list[Received] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> IssuanceStorm:
        csrs = [make_csr(f"storm-{i}", [domain_uri(DOMAIN)])[0] for i in range(self.batch)]
        for number, node in enumerate(self.nodes):
            thread = threading.Thread(target=self._client, args=(number, node, csrs),
                                      name=f"storm-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def received_after(self, moment: float) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.at > moment]

    def wait_received_after(self, moment: float, count: int, timeout: float = 60.0) -> float:
        """When the first certificate after `moment` was received, once `count` were."""
        deadline = time.monotonic() + timeout
        while len(self.received_after(moment)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} certificates after {timeout} s; "
                                   f"last failures: {self.failures[-3:]}")
            time.sleep(0.02)
        return min(r.at for r in self.received_after(moment))

    def wait_every_node_after(self, moment: float, timeout: float = 60.0) -> None:
        """Until each node has issued since `moment` (each reconnected after a failover)."""
        deadline = time.monotonic() + timeout
        while {r.node for r in self.received_after(moment)} != set(range(len(self.nodes))):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every node issued after {timeout} s; "
                                   f"last failures: {self.failures[-3:]}")
            time.sleep(0.02)

    def _client(self, number: int, node: PKI, csrs: list[bytes]) -> None:
        requests = [IssuanceRequest(CA, "operational", c, "storm") for c in csrs]
        while not self._stop.is_set():
            try:
                outcomes = node.issuance.issue_many(requests)
            except Exception as exc:  # the database went away under this batch: send again
                with self._lock:
                    self.failures.append((time.monotonic(), exc.__class__.__name__))
                self._stop.wait(0.05)
                continue
            now = time.monotonic()
            with self._lock:
                self.received += [Received(o.record.serial, o.record.fingerprint, now, number)
                                  for o in outcomes if isinstance(o, Issued)]
