"""A certificate that left the server is stored (issue 21: durable commits, group commit).

Many clients enroll at once over CMP (RFC 9483 §4.1.2 cr, implicitConfirm) against
`iotpki serve --workers 2`; once some answers are in, every process of the server is killed
with SIGKILL while other requests are still being served. Afterwards every certificate a
client received is in the store with its audit entry, and the audit chain verifies: an
answer is sent only after the transaction that stored its certificate committed. Nothing is
timed; which requests were cut off by the kill does not matter.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
from datetime import UTC, datetime

from bench.cpu import process_tree
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.app import PKI, build_pki
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.keys import generate_private_key
from tests.cmp.rfc9483 import read_reply
from tests.factories import domain_uri, make_csr
from tests.servers import ServerProcess

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
CLIENTS = 8
PER_CLIENT = 12
KILL_AFTER = 24  # answers received before the kill


def _requests(pki: PKI) -> list[bytes]:
    """One cr per device, each signed with its own current certificate (one renewal per
    identity: only the newest certificate of an identity renews)."""
    made = [make_csr(f"crash-{index}", [domain_uri(DOMAIN)])
            for index in range(CLIENTS * PER_CLIENT)]
    outcomes = pki.issuance.issue_many([IssuanceRequest(CA, "operational", csr, "test")
                                        for csr, _ in made])
    requests = []
    for (_, key), outcome in zip(made, outcomes, strict=True):
        assert isinstance(outcome, Issued), outcome
        requests.append(encode_signed_request(
            "cr", encode_cert_req_msg(generate_private_key("ec-p256"),
                                      outcome.certificate.subject),
            key, (outcome.certificate, *outcome.chain[:-1]), datetime.now(UTC)))
    return requests


def _issued_certificate(answer: bytes) -> x509.Certificate | None:
    reply = read_reply(answer)
    return reply.certificate() if reply.body == "cp" and reply.status == 0 else None


class _Clients:
    def __init__(self, port: int, requests: list[bytes]) -> None:
        self.port = port
        self.requests = requests
        self.received: list[x509.Certificate] = []
        self.enough = threading.Event()
        self.lock = threading.Lock()

    def run(self, share: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            for request in share:
                connection.request("POST", "/.well-known/cmp", request,
                                   {"Content-Type": "application/pkixcmp"})
                certificate = _issued_certificate(connection.getresponse().read())
                assert certificate is not None, "every request before the kill is served"
                with self.lock:
                    self.received.append(certificate)
                    if len(self.received) >= KILL_AFTER:
                        self.enough.set()
        except (OSError, http.client.HTTPException):
            return  # the server was killed under this request
        finally:
            connection.close()
            self.enough.set()  # a client that ends early must not leave the test waiting


def test_kill_9_loses_no_certificate_a_client_received(demo_pki: PKI) -> None:
    requests = _requests(demo_pki)
    server = ServerProcess(demo_pki.settings, workers=2).start()
    assert server.process is not None
    clients = _Clients(server.http_port, requests)
    threads = [threading.Thread(target=clients.run, args=(requests[i::CLIENTS],))
               for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        clients.enough.wait(timeout=600)
        for pid in process_tree(server.process.pid):  # the supervisor first: no restarts
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=30)
    finally:
        for thread in threads:
            thread.join(timeout=120)
        server.stop()
    with clients.lock:
        received = list(clients.received)
    assert received, "no answer came before the kill"
    after = build_pki(demo_pki.settings, migrate=False)  # the database as the crash left it
    try:
        for certificate in received:
            fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
            record = after.certificates.get_by_fingerprint(fingerprint)
            assert record.serial == certificate.serial_number
        issued = {entry.record.details.get("fingerprint")
                  for entry in after.audit.entries(limit=None)
                  if entry.record.action == "certificate.issue"
                  and entry.record.outcome == "success"}
        assert {c.fingerprint(hashes.SHA256()).hex() for c in received} <= issued
        checked, problems = after.audit.problems()
        assert checked > 0 and problems == []
    finally:
        after.close()
