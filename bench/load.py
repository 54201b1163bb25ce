"""The load generator the server benchmarks share (CMP, SCEP, ACME, EST): loader processes
separate from the server, the server's process-tree CPU measured around them.

A run starts `loaders` processes; each runs `loader(its share of the work, duration)` and
reports what it saw. The server's user + system CPU time between the two snapshots, divided
by the answers, is the CPU per request (bench/cpu.py), which a shared machine's load
disturbs less than the rate.

`threaded(client)` makes the usual loader: `threads` threads, each with its share of the
loader's work, calling `client(work, stop_at, answers)`, which sends requests one after
another on its own connection until `stop_at` (time.monotonic) and appends each answer.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.cpu import tree_cpu

# (its work, stop_at, answers out): one connection's requests.
Client = Callable[[Sequence[Any], float, list[Any]], None]
# (its work, duration) -> (seconds measured, answers, CPU seconds of the loader, extra
# answers the server gave outside the measured seconds, e.g. a warm-up).
Loader = Callable[[Sequence[Any], float], tuple[float, list[Any], float, int]]


@dataclass(frozen=True)
class LoadRun:
    answers: list[Any]
    elapsed: float  # seconds, the slowest loader's
    load_cores: float  # CPU the loaders used, in cores
    server_cpu: float  # CPU seconds of the server's process tree during the run
    served: int  # every answer the server gave during the run (warm-ups included)

    @property
    def server_ms_per_answer(self) -> float:
        return 1000 * self.server_cpu / max(self.served, 1)

    def rate(self, good: int) -> float:
        return good / self.elapsed


def threaded(client: Client, threads: int) -> Loader:
    return partial(_threaded_loader, client, threads)


def _threaded_loader(client: Client, threads: int, work: Sequence[Any],
                     duration: float) -> tuple[float, list[Any], float, int]:
    stop_at = time.monotonic() + duration
    answers: list[list[Any]] = [[] for _ in range(threads)]
    workers = [threading.Thread(target=client, args=(work[i::threads], stop_at, answers[i]))
               for i in range(threads)]
    started, cpu = time.monotonic(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.monotonic() - started, [a for per in answers for a in per],
            time.process_time() - cpu, 0)


def _report(loader: Loader, work: Sequence[Any], duration: float,
            queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(loader(work, duration))


def run_load(server_pid: int, loader: Loader, work: Sequence[Any], loaders: int,
             duration: float, timeout: float = 300) -> LoadRun:
    """`loaders` processes, each with its share of `work`, for `duration` seconds."""
    context = multiprocessing.get_context("fork")  # the loader may be a closure
    queue: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    processes = [context.Process(target=_report, args=(loader, work[i::loaders], duration,
                                                       queue)) for i in range(loaders)]
    cpu_before = tree_cpu(server_pid)
    for process in processes:
        process.start()
    results = [queue.get(timeout=duration + timeout) for _ in processes]
    server_cpu = tree_cpu(server_pid) - cpu_before
    for process in processes:
        process.join()
    elapsed = max(r[0] for r in results)
    answers = [a for r in results for a in r[1]]
    return LoadRun(answers, elapsed, sum(r[2] for r in results) / elapsed, server_cpu,
                   len(answers) + sum(r[3] for r in results))
