"""Issue 15 item 3 (and the head cap of item 2) against a real `iotpki serve`: slow and
oversized requests on both listeners, on loopback.

The attack: a few hundred connections that send half a request head, or a head and half a
body, then nothing, from several loopback addresses; then a flood of connections. While it
runs, OCSP probes from another loopback address must keep getting answers, the slow
connections must be closed by the server after the head/body timeout (408), and
connections over the per-client or global cap must get 503 at once."""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from iotpki.app import build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.settings import ListenerLimits, Settings
from tests.factories import domain_uri, make_csr
from tests.servers import free_port

CA = "operatorco-operations"
HEAD_TIMEOUT = 2.0
LIMITS = {"IOTPKI_HEADER_TIMEOUT": str(HEAD_TIMEOUT), "IOTPKI_BODY_TIMEOUT": str(HEAD_TIMEOUT),
          "IOTPKI_MAX_CONNECTIONS": "450", "IOTPKI_MAX_CONNECTIONS_PER_CLIENT": "40",
          "IOTPKI_MAX_HEADER_BYTES": "16384"}
PROBE_FROM = "127.0.0.2"


@dataclass
class Served:
    http_port: int
    https_port: int
    ocsp_request: bytes
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module, on SQLite (the listener does not depend on the store)."""
    directory = tmp_path_factory.mktemp("slow")
    http_port, https_port = free_port(), free_port()
    env = {**os.environ, **LIMITS, "IOTPKI_CA_PASSPHRASE": "test passphrase, not a secret",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    os.environ["IOTPKI_CA_PASSPHRASE"] = env["IOTPKI_CA_PASSPHRASE"]
    settings = Settings(data_dir=directory / "data", public_url=f"http://127.0.0.1:{http_port}")
    pki = build_pki(settings)
    try:
        create_demo_hierarchy(pki)
        request = _ocsp_request(pki)
    finally:
        pki.close()
    log = directory / "server.log"
    command = [sys.executable, "-m", "iotpki.cli.main", "--data-dir", str(settings.data_dir),
               "--public-url", settings.public_url, "serve", "--http-port", str(http_port),
               "--https-port", str(https_port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    running = Served(http_port, https_port, request, process, log)
    try:
        _wait(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _ocsp_request(pki: object) -> bytes:
    csr, _ = make_csr("probe", sans=[domain_uri("building-42.operator.example")])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))  # type: ignore[attr-defined]
    assert isinstance(outcome, Issued)
    issuer = pki.authorities.get(CA).certificate  # type: ignore[attr-defined]
    return (ocsp.OCSPRequestBuilder().add_certificate(outcome.certificate, issuer, hashes.SHA1())
            .build().public_bytes(serialization.Encoding.DER))


def _wait(running: Served, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = {running.http_port, running.https_port}
    while pending and time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"server exited: {running.log.read_text()}")
        for port in list(pending):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    pending.discard(port)
        time.sleep(0.2)
    assert not pending, running.log.read_text()


def probe_ocsp(running: Served, source: str = PROBE_FROM) -> float:
    """Seconds one OCSP POST took; the answer must be a successful OCSP response."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=5,
                                            source_address=(source, 0))
    try:
        connection.request("POST", f"/ocsp/{CA}", body=running.ocsp_request,
                           headers={"Content-Type": "application/ocsp-request"})
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status == 200
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return time.monotonic() - started


def open_slow(port: int, source: str, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(data)
    return sock


def answer_of(sock: socket.socket, timeout: float) -> bytes:
    """What the server sent before closing (b"" when it closed silently)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return b"<still open>"
    except ConnectionResetError:
        pass
    return received


def readable(sockets: list[socket.socket]) -> list[int]:
    """Descriptors with something to read (an answer, or the server's close)."""
    poller = select.poll()
    for sock in sockets:
        poller.register(sock, select.POLLIN)
    return [fd for fd, _ in poller.poll(0)]


HALF_HEAD = b"POST /ocsp/" + CA.encode() + b" HTTP/1.1\r\nHost: iotpki\r\nContent-Ty"
HALF_BODY = (b"POST /ocsp/" + CA.encode() + b" HTTP/1.1\r\nHost: iotpki\r\n"
             b"Content-Type: application/ocsp-request\r\nContent-Length: 4000\r\n\r\n0\x82")


def test_ocsp_answers_while_slow_connections_are_held_and_then_closed(served: Served) -> None:
    """300 slow heads and 100 slow bodies from ten addresses (under every cap), then OCSP
    probes from another address: every probe answers, fast; after the timeouts the server
    has closed every slow connection with 408."""
    baseline = max(probe_ocsp(served) for _ in range(5))
    slow = [open_slow(served.http_port, f"127.0.0.{10 + i % 10}",
                      HALF_HEAD if i < 300 else HALF_BODY) for i in range(400)]
    try:
        latencies = [probe_ocsp(served) for _ in range(30)]
        assert max(latencies) < max(2.0, 10 * baseline), latencies
        time.sleep(HEAD_TIMEOUT + 1)
        answers = [answer_of(sock, 5) for sock in slow]
    finally:
        for sock in slow:
            sock.close()
    assert not [a for a in answers if a == b"<still open>"]
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:20] for a in answers}
    probe_ocsp(served)


def test_connections_over_the_caps_get_503_at_once_and_ocsp_keeps_answering(
        served: Served) -> None:
    """45 connections from one address: the 5 over the per-client cap get 503 at once.
    Then a flood of 1000 slow connections from 200 addresses (each under the per-client
    cap) against a global cap of 450: the oldest waiting connections are evicted with 503,
    the server holds at most 450, and OCSP probes from another address are answered."""
    per_client = [open_slow(served.http_port, "127.0.0.3", HALF_HEAD) for _ in range(45)]
    flood: list[socket.socket] = []
    try:
        refused = [answer_of(s, 1) for s in per_client[40:]]
        assert all(a.startswith(b"HTTP/1.1 503") for a in refused), refused
        flood = [open_slow(served.http_port, f"127.0.1.{i % 200 + 1}", HALF_HEAD)
                 for i in range(1000)]
        latencies = [probe_ocsp(served) for _ in range(10)]
        time.sleep(0.5)
        answered = readable(per_client[:40] + flood)
    finally:
        for sock in per_client + flood:
            sock.close()
    assert len(answered) >= 1040 - 450
    assert max(latencies) < 2.0, latencies
    probe_ocsp(served)


def test_oversized_request_head_is_431_on_both_listeners(served: Served) -> None:
    head = (b"GET /ocsp/" + CA.encode() + b"/AAAA HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * 200_000 + b"\r\n\r\n")
    sock = open_slow(served.http_port, "127.0.0.4", b"")
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(head)
    assert answer_of(sock, 5).startswith(b"HTTP/1.1 431")
    sock.close()
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", served.https_port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            tls.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\n"
                        b"Authorization: Basic " + b"QUFB" * 50_000 + b"\r\n\r\n")
        assert answer_of(tls, 5).startswith(b"HTTP/1.1 431")


def test_slow_tls_head_is_closed_with_408(served: Served) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", served.https_port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost:")
        started = time.monotonic()
        assert answer_of(tls, HEAD_TIMEOUT + 5).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_limits_from_the_environment(tmp_path: Path) -> None:
    limits = Settings.from_environment(
        tmp_path, env={**LIMITS, "IOTPKI_TRUSTED_PROXIES": "10.0.0.1"}).listener
    assert limits.header_timeout == HEAD_TIMEOUT and limits.max_connections == 450
    assert limits.max_connections_per_client == 40 and limits.exempt == {"10.0.0.1"}
    assert Settings.from_environment(tmp_path, env={}).listener == ListenerLimits()
