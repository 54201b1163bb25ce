"""The notification worker each server node runs, and several nodes sharing one database:
every delivery is made once (one Webhook-Id per subscription and event)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from iotpki.app import PKI, build_pki
from iotpki.background import NotificationWorker
from iotpki.core.integration.webhook import ID_HEADER
from tests.lifecycle.fleet import operational_device
from tests.lifecycle.receiver import Receiver, webhook_receiver


def wait_for(receiver: Receiver, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_node_worker_delivers_webhooks_and_runs_the_expiry_monitor(demo_pki: PKI) -> None:
    fleet = operational_device(demo_pki)
    with webhook_receiver() as receiver:
        demo_pki.webhooks.add("operatorco", receiver.url, ["device.*"], "admin")
        worker = NotificationWorker(demo_pki.expiry.scan, demo_pki.webhook_dispatcher.run_once,
                                    poll=0.05, scan_every=3600)
        worker.start()
        try:
            demo_pki.lifecycle.report(fleet.device_id, "maintenance_start", "dms")
            demo_pki.lifecycle.report(fleet.device_id, "maintenance_end", "dms")
            wait_for(receiver, 2)
        finally:
            worker.stop()
    # Deliveries are not ordered (a retried one arrives after a later event's): compare sets.
    assert sorted(json.loads(r.body)["type"] for r in receiver.received) == [
        "device.maintenance_end", "device.maintenance_start"]


def test_several_nodes_deliver_each_event_once(demo_pki: PKI) -> None:
    fleets = [operational_device(demo_pki, n) for n in range(1, 4)]
    nodes = [build_pki(demo_pki.settings) for _ in range(3)]  # three processes' worth
    with webhook_receiver() as receiver:
        demo_pki.webhooks.add("operatorco", receiver.url, ["device.*", "certificate.*"], "admin")
        stop = threading.Event()
        failures: list[BaseException] = []

        def node(pki: PKI) -> None:
            while not stop.is_set():
                try:
                    pki.webhook_dispatcher.run_once()
                except Exception as exc:  # a lost race must be harmless, not fatal
                    failures.append(exc)
                time.sleep(0.01)

        threads = [threading.Thread(target=node, args=(n,)) for n in nodes]
        for thread in threads:
            thread.start()
        try:
            for fleet in fleets:
                for event in ("lost", "found", "renewal_due"):
                    demo_pki.lifecycle.report(fleet.device_id, event, "crm")
            # Per device: 2 holds, 2 releases (device cert is DeviceCo's: 1 each) + 3 events.
            wait_for(receiver, 3 * (2 + 3))
            time.sleep(0.5)  # anything sent twice would arrive now
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            for pki in nodes:
                pki.close()
    ids = Counter(r.headers[ID_HEADER] for r in receiver.received)
    assert len(ids) == 15 and set(ids.values()) == {1}
    events = Counter((json.loads(r.body)["event_id"]) for r in receiver.received)
    assert set(events.values()) == {1}
    assert all("locked" in str(f) or "another node" in str(f) for f in failures), failures
