"""Issue 21: with `--workers N`, each worker process of each listener listens on a socket of
its own (SO_REUSEPORT), so the kernel spreads new connections over the workers; and a second
`iotpki serve` on a port that one holds is refused at start, though the workers' sockets
would let another SO_REUSEPORT socket join them.

Which worker holds a connection is read from /proc (the accepted socket's inode among the
worker's file descriptors): the application is not changed to reveal its process."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.cpu import process_tree

from iotpki.app import PKI
from iotpki.cli.serve import check_ports
from iotpki.core.errors import ConfigurationError
from iotpki.listener import WorkerSocket, reuseport_supported
from tests.conftest import shared_demo_pki
from tests.servers import ServerProcess, free_port, pythonpath, serve_command

pytestmark = pytest.mark.skipif(not (sys.platform == "linux" and reuseport_supported()),
                                reason="SO_REUSEPORT and /proc: Linux")

CONNECTIONS = 40  # all on one of 2 workers by chance: probability 2 * 2^-40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[tuple[PKI, ServerProcess]]:
    """The module's one server: two workers on HTTP and two on HTTPS."""
    directory = tmp_path_factory.mktemp("workers")
    port = free_port()
    with shared_demo_pki(request, directory, None, f"http://127.0.0.1:{port}") as pki:
        running = ServerProcess(pki.settings, port, https_port=free_port(), workers=2).start()
        try:
            _wait_for_both_workers(running)
            yield pki, running
        finally:
            running.stop()


def _wait_for_both_workers(server: ServerProcess, timeout: float = 240) -> None:
    """`start` returns once one worker answers; the other may still be loading."""
    deadline = time.monotonic() + timeout
    for port in (server.http_port, int(server.https_port or 0)):
        while sum(state == "0A" for _, _, state in _tcp_sockets(port)) < 2:
            assert server.process is not None and server.process.poll() is None
            assert time.monotonic() < deadline, f"port {port}: a worker is not listening"
            time.sleep(0.1)


def _tcp_sockets(port: int) -> list[tuple[int, int, str]]:
    """(inode, remote port, state) of the IPv4 sockets whose local port is `port`."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found.append((int(fields[9]), int(fields[2].split(":")[1], 16), fields[3]))
    return found


def _owners(root: int, inodes: set[int]) -> Counter[int]:
    """How many of the sockets `inodes` each process under `root` has open."""
    owned: Counter[int] = Counter()
    for pid in process_tree(root):
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{descriptor}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                owned[pid] += 1
    return owned


def test_connections_are_spread_over_the_http_workers(
        served: tuple[PKI, ServerProcess]) -> None:
    _, server = served
    assert server.process is not None
    connections = []
    try:
        for _ in range(CONNECTIONS):
            connection = socket.create_connection(("127.0.0.1", server.http_port), timeout=60)
            connections.append(connection)
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert connection.recv(4096).startswith(b"HTTP/1.1 200 ")  # accepted and served
        ours = {c.getsockname()[1] for c in connections}
        accepted = {inode for inode, peer, _ in _tcp_sockets(server.http_port) if peer in ours}
        assert len(accepted) == CONNECTIONS
        per_worker = _owners(server.process.pid, accepted)
    finally:
        for connection in connections:
            connection.close()
    assert sum(per_worker.values()) == CONNECTIONS
    assert len(per_worker) == 2, per_worker  # both workers served some


@pytest.mark.parametrize("listener", ["http", "https"])
def test_each_worker_listens_on_a_socket_of_its_own(served: tuple[PKI, ServerProcess],
                                                    listener: str) -> None:
    _, server = served
    assert server.process is not None
    port = server.http_port if listener == "http" else int(server.https_port or 0)
    listening = {inode for inode, _, state in _tcp_sockets(port) if state == "0A"}  # LISTEN
    owners = _owners(server.process.pid, listening)
    assert len(listening) == 2 and sorted(owners.values()) == [1, 1], owners


def test_a_second_serve_on_a_held_port_is_refused(served: tuple[PKI, ServerProcess]) -> None:
    """Its SO_REUSEPORT workers could bind beside ours: the start-up check refuses."""
    pki, server = served
    command = serve_command(pki.settings, server.http_port, workers=2)
    second = subprocess.run(command, env={**os.environ, "PYTHONPATH": pythonpath()},
                            capture_output=True, text=True, timeout=240, check=False)
    assert second.returncode == 1
    assert second.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:"
                                          f"{server.http_port} (http): Address already in use"]
    assert "iotpki serve:" not in second.stdout  # nothing announced, nothing started


def test_a_held_port_admits_worker_sockets_and_refuses_the_rest() -> None:
    """In process, no server: what `serve` relies on. The holder has no SO_REUSEADDR (two
    SO_REUSEADDR sockets may share a port while neither listens); a worker socket arrives in
    the worker by unpickling (`WorkerSocket`)."""
    port = free_port()
    holders = check_ports("127.0.0.1", [("http", port)], hold=True)
    try:
        _refused(port)  # before the workers listen (they are still loading)
        worker = pickle.loads(pickle.dumps(WorkerSocket("127.0.0.1", port)))
        with worker:
            assert worker.getsockname() == ("127.0.0.1", port)
            _refused(port)
            worker.listen()
            _refused(port)
    finally:
        for holder in holders:
            holder.close()
    assert check_ports("127.0.0.1", [("http", port)]) == []  # released with `serve`


def _refused(port: int) -> None:
    with pytest.raises(ConfigurationError, match="Address already in use"):
        check_ports("127.0.0.1", [("http", port)])
    with socket.socket() as plain, pytest.raises(OSError):
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        plain.bind(("127.0.0.1", port))
