"""CPU time of a server's whole process tree (master, workers, HTTPS listener), from /proc.

The machine the benchmarks run on is shared, so a rate alone says little: what a request
costs is the server's user + system CPU time between two snapshots taken while the load
runs, divided by the requests answered between the same two instants (BENCHMARKING.md).
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime in seconds) of a live process; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                children.setdefault(found[0], []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by `root` and every live descendant."""
    return sum(found[1] for pid in process_tree(root) if (found := _stat(pid)) is not None)


def processes_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds used so far by each of `pids` still alive."""
    return {pid: found[1] for pid in pids if (found := _stat(pid)) is not None}


def load_average() -> float:
    return os.getloadavg()[0]
