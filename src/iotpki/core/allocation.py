"""Bulk work that allocates millions of objects without the cyclic garbage collector.

A million-entry manifest decodes into millions of lists, dicts, strings and entries, none
of them in a reference cycle: reference counting frees them all. CPython's cyclic collector
still runs every few hundred allocations and, as the heap grows, re-scans all of it; on
this project's machine that was 5 of 27 seconds of a million-entry import
(docs/performance.md). While any bulk operation runs the collector is paused, and it is
restored when the last one ends (imports may overlap in a server's threads)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    def enter(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1

    def leave(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._was_enabled:
                gc.enable()


_PAUSE = _Pause()


@contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """Run the body with the cyclic garbage collector off (reference counting still frees
    acyclic objects at once); it is on again when the last overlapping body ends."""
    _PAUSE.enter()
    try:
        yield
    finally:
        _PAUSE.leave()
