"""A PostgreSQL topology of our own for the replica and failover tests and for
`bench/scale.py`: a primary, a synchronous standby and an asynchronous read replica, all
three real clusters made with Debian's PostgreSQL tools (`initdb`, `pg_basebackup`,
`pg_ctl`) in a directory of their own, on free loopback ports, kept in step by streaming
replication. The machine's own server (5432) is never touched.

    python -m tests.topology start DIR      # prints the URLs; `stop DIR` tears it down

PostgreSQL refuses to run as root: as root the clusters run as the `postgres` user
(`runuser`), and their directory is handed to it. `CI=true`: missing binaries fail the
test; elsewhere the test is skipped with the reason (`require_topology`).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port

BIN = Path(os.environ.get("IOTPKI_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
DATABASE = "iotpki"
STANDBY, REPLICA = "standby", "replica"  # application names the primary knows them by
# Small clusters: a test topology must not take the machine's memory or disks.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'", "wal_level": "replica", "max_wal_senders": "10",
    "wal_keep_size": "'512MB'", "hot_standby": "on", "shared_buffers": "'64MB'",
    "max_connections": "100", "synchronous_commit": "on", "wal_receiver_status_interval": "1",
    "hot_standby_feedback": "on", "log_min_messages": "warning", "logging_collector": "off",
}


def missing_tools() -> str | None:
    """None if the PostgreSQL tools are there, else what is missing."""
    absent = [name for name in TOOLS if not os.access(BIN / name, os.X_OK)]
    if absent:
        return f"PostgreSQL tools not found in {BIN}: {', '.join(absent)} (install postgresql-15)"
    return None


def require_topology() -> None:
    """Skip without the PostgreSQL tools, with the reason; in CI (CI=true) fail instead."""
    reason = missing_tools()
    if reason is None:
        return
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run the replication tests)")
    pytest.skip(reason)


@contextmanager
def running_topology() -> Iterator[Topology]:
    """A started topology, stopped and removed afterwards (for a module's fixture)."""
    require_topology()
    topology = Topology.create()
    try:
        yield topology.start()
    finally:
        topology.stop()


def _run_as() -> list[str]:
    """PostgreSQL will not run as root: the clusters then run as `postgres`."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class Node:
    name: str
    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.directory / self.name

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int:
        """The postmaster's process id (first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])


@dataclass
class Topology:
    """Three clusters under `directory`: `primary`, `standby` (synchronous: a commit returns
    once the standby has flushed it) and `replica` (asynchronous, read-only)."""

    directory: Path
    primary: Node = field(init=False)
    standby: Node = field(init=False)
    replica: Node = field(init=False)

    def __post_init__(self) -> None:
        self.primary = Node("primary", self.directory)
        self.standby = Node(STANDBY, self.directory)
        self.replica = Node(REPLICA, self.directory)

    @classmethod
    def create(cls, directory: Path | None = None) -> Topology:
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="iotpki-topology-"))
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(directory, user.pw_uid, user.pw_gid)
        directory.chmod(0o755)
        return cls(directory)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Topology:
        """Make and start the three clusters; returns once both standbys stream."""
        self._initdb(self.primary)
        self._pg_ctl(self.primary, "start")
        self._psql(self.primary, f"CREATE DATABASE {DATABASE}")
        for node in (self.standby, self.replica):
            self._base_backup(node)
            self._pg_ctl(node, "start")
        self.wait_streaming()
        # Synchronous only now: before the standby streams, every commit would wait for it.
        self._psql(self.primary, f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY}'")
        self._psql(self.primary, "SELECT pg_reload_conf()")
        return self

    def stop(self) -> None:
        """Stop every cluster still running (fast shutdown) and remove the directory."""
        for node in (self.replica, self.standby, self.primary):
            if (node.data / "postmaster.pid").exists():
                subprocess.run([*_run_as(), str(BIN / "pg_ctl"), "stop", "-D", str(node.data),
                                "-m", "immediate", "-w"], capture_output=True, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def kill_primary(self) -> None:
        """kill -9 of the primary's postmaster and every backend: a crash, not a shutdown."""
        pid = self.primary.pid
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                                  check=False).stdout.split()
        for process in (pid, *map(int, children)):
            with suppress(ProcessLookupError):
                os.kill(process, 9)
        (self.primary.data / "postmaster.pid").unlink(missing_ok=True)

    def promote_standby(self) -> None:
        """The standby becomes the primary (`pg_ctl promote`, waits until it accepts
        writes); the replica follows it (new `primary_conninfo`, reloaded: it switches to
        the new timeline, PostgreSQL's `recovery_target_timeline = latest`)."""
        self._pg_ctl(self.standby, "promote")
        self._psql(self.replica, "ALTER SYSTEM SET primary_conninfo = "
                   f"'{_conninfo(self.standby, REPLICA)}'")
        self._psql(self.replica, "SELECT pg_reload_conf()")

    # -- reading the state ----------------------------------------------------------------------

    def multi_host_url(self) -> str:
        """One URL naming the primary and the standby: libpq tries them in turn and keeps
        the one that accepts writes, so a node finds the promoted standby by itself."""
        hosts = "&".join(f"host=127.0.0.1:{n.port}" for n in (self.primary, self.standby))
        return (f"postgresql+psycopg://postgres@/{DATABASE}?{hosts}"
                "&target_session_attrs=read-write&connect_timeout=2")

    def streaming(self) -> set[str]:
        """Application names of the standbys streaming from the primary now."""
        out = self._psql(self.primary, "SELECT application_name FROM pg_stat_replication "
                         "WHERE state = 'streaming'")
        return set(out.split())

    def wait_streaming(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.streaming() != {STANDBY, REPLICA}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"standbys not streaming after {timeout} s: "
                                   f"{self.streaming()}")
            time.sleep(0.1)

    def pause_replay(self, node: Node) -> None:
        """Hold the replica's replay (WAL still arrives): the replica lags on purpose."""
        self._psql(node, "SELECT pg_wal_replay_pause()")

    def resume_replay(self, node: Node) -> None:
        self._psql(node, "SELECT pg_wal_replay_resume()")

    # -- the tools ------------------------------------------------------------------------------

    def _initdb(self, node: Node) -> None:
        _tool("initdb", "-D", str(node.data), "-U", "postgres", "--auth=trust",
              "--no-sync", "-E", "UTF8", "--locale=C")
        conf = {**SETTINGS, "port": str(node.port),
                "unix_socket_directories": f"'{self.directory}'"}
        with (node.data / "postgresql.conf").open("a") as out:
            out.write("".join(f"{key} = {value}\n" for key, value in conf.items()))
        with (node.data / "pg_hba.conf").open("a") as out:
            out.write("host replication postgres 127.0.0.1/32 trust\n")

    def _base_backup(self, node: Node) -> None:
        """A copy of the primary that streams from it (`-R` writes standby.signal and
        primary_conninfo); its own port, and no synchronous standby of its own, so that
        once promoted it does not wait for one that is not there."""
        _tool("pg_basebackup", "-D", str(node.data), "-R", "-X", "stream", "-c", "fast",
              "-d", _conninfo(self.primary, node.name))
        with (node.data / "postgresql.auto.conf").open("a") as out:
            out.write(f"port = {node.port}\nsynchronous_standby_names = ''\n")

    def _pg_ctl(self, node: Node, action: str) -> None:
        _tool("pg_ctl", action, "-D", str(node.data), "-w", "-t", "60",
              "-l", str(self.directory / f"{node.name}.log"))

    def _psql(self, node: Node, sql: str, timeout: float = 30.0) -> str:
        psql = shutil.which("psql") or str(BIN / "psql")
        return subprocess.run(
            [*_run_as(), psql, "-h", "127.0.0.1", "-p", str(node.port), "-U", "postgres",
             "-d", DATABASE if sql != f"CREATE DATABASE {DATABASE}" else "postgres",
             "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, check=True, timeout=timeout).stdout.strip()


def _conninfo(primary: Node, application: str) -> str:
    return (f"host=127.0.0.1 port={primary.port} user=postgres "
            f"application_name={application}")


def _tool(name: str, *args: str) -> None:
    result = subprocess.run([*_run_as(), str(BIN / name), *args], capture_output=True,
                            text=True, check=False, cwd="/", timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)} failed: {result.stderr or result.stdout}")


def main(argv: list[str]) -> int:
    """`start DIR` (prints the URLs as JSON, the clusters keep running), `stop DIR`."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.topology start|stop DIR", file=sys.stderr)
        return 2
    state = Path(argv[1]) / "topology.json"
    if argv[0] == "start":
        topology = Topology.create(Path(argv[1])).start()
        urls = {"primary": topology.primary.url, "standby": topology.standby.url,
                "replica": topology.replica.url, "nodes": topology.multi_host_url(),
                "ports": [n.port for n in (topology.primary, topology.standby,
                                           topology.replica)]}
        state.write_text(json.dumps(urls, indent=2))
        print(state.read_text())
        return 0
    ports = json.loads(state.read_text())["ports"]
    topology = Topology(Path(argv[1]))
    for node, port in zip((topology.primary, topology.standby, topology.replica), ports,
                          strict=True):
        node.port = port
    topology.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
