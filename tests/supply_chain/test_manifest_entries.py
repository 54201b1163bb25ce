"""Manifest entries and what a million-entry import relies on: each entry's fields checked
whole, registration ids, the cyclic collector paused for the import and restored after."""

from __future__ import annotations

import gc
import threading
import uuid
from typing import Any

import pytest

from iotpki.core.allocation import cyclic_collector_paused
from iotpki.core.ra.registration import new_registration_ids
from iotpki.wire import manifest as wire_manifest
from iotpki.wire.errors import DecodeError

FINGERPRINT = "ab" * 32
GOOD = [FINGERPRINT, "CN=ChipCo Component CA,O=ChipCo", "0A1b", "chip-1", {"lot": "L42"}]


@pytest.mark.parametrize("bad", [
    [FINGERPRINT + "\n", *GOOD[1:]],  # `$` once let a final newline through
    [FINGERPRINT[:-1] + "g", *GOOD[1:]],
    [FINGERPRINT[:-1], *GOOD[1:]],
    [FINGERPRINT, GOOD[1], "", *GOOD[3:]],
    [FINGERPRINT, GOOD[1], "1" * 41, *GOOD[3:]],
    [FINGERPRINT, GOOD[1], "0a\n", *GOOD[3:]],
    [*GOOD[:4], ["lot"]],
])
def test_an_entry_field_is_checked_whole(bad: list[Any]) -> None:
    assert wire_manifest._entry(*GOOD).serial == "0A1b"
    with pytest.raises(DecodeError):
        wire_manifest._entry(*bad)


def test_registration_ids_are_distinct_version_7_uuids_in_time_order() -> None:
    """RFC 9562 §5.7: version 7, variant 10, the millisecond first."""
    first, second = new_registration_ids(20_000), new_registration_ids(3)
    assert len(set(first)) == len(first)
    for text in first[:200] + second:
        value = uuid.UUID(text)
        assert (value.version, value.variant) == (7, uuid.RFC_4122)
        assert str(value) == text
    assert max(first)[:13] <= min(second)[:13]  # the stamp: octets 0-5


def test_the_collector_is_paused_until_the_last_overlapping_bulk_operation_ends() -> None:
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other_import() -> None:
        with cyclic_collector_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_import)
    with cyclic_collector_paused():
        assert not gc.isenabled()
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other import still runs
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_the_collector_comes_back_after_a_failed_bulk_operation() -> None:
    with pytest.raises(RuntimeError), cyclic_collector_paused():
        raise RuntimeError("refused")
    assert gc.isenabled()


def test_a_collector_the_caller_had_off_stays_off() -> None:
    gc.disable()
    try:
        with cyclic_collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
