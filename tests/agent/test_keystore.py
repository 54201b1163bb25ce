"""The file key store: permissions, versions, and no key/certificate mismatch after a
crash at any point of a renewal."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from iotpki.agent.keystore import (
    CURRENT,
    FileKeyStore,
    KeyStoreError,
    MemoryKeyStore,
    same_public_key,
)
from tests.agent.certs import certificate


def _enrolled(directory: Path) -> FileKeyStore:
    store = FileKeyStore(directory)
    pending = store.new_key("ec-p256")
    cert, _ = certificate(key=pending.key)
    store.install(pending, [cert])
    return store


def test_key_file_0600_directory_0700(tmp_path: Path) -> None:
    store = _enrolled(tmp_path / "agent")
    identity = store.current()
    assert identity is not None and identity.key_file is not None
    assert stat.S_IMODE(identity.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "agent").stat().st_mode) == 0o700
    assert stat.S_IMODE(identity.key_file.parent.stat().st_mode) == 0o700
    assert (tmp_path / "agent" / CURRENT).is_symlink()


def test_a_certificate_for_another_key_is_not_installed(tmp_path: Path) -> None:
    store = _enrolled(tmp_path)
    before = store.current()
    pending = store.new_key("ec-p256")
    foreign, _ = certificate(serial=9)
    with pytest.raises(KeyStoreError, match="does not match"):
        store.install(pending, [foreign])
    after = store.current()
    assert after is not None and before is not None
    assert (after.version, after.chain) == (before.version, before.chain)


def test_crash_after_the_new_key_leaves_the_old_pair(tmp_path: Path) -> None:
    store = _enrolled(tmp_path)
    old = store.current()
    store.new_key("ec-p256")  # the process dies before the certificate arrives
    reopened = FileKeyStore(tmp_path)
    current = reopened.current()
    assert current is not None and old is not None
    assert current.version == old.version
    assert same_public_key(current.key, current.certificate)
    assert reopened.new_key("ec-p256").version == "0003"  # the orphan's number is not reused


def test_crash_before_the_switch_leaves_the_old_pair(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = _enrolled(tmp_path)
    pending = store.new_key("ec-p256")
    cert, _ = certificate(key=pending.key, serial=2)
    real_replace = os.replace

    def crash(source: object, target: object) -> None:
        if str(target).endswith(CURRENT):
            raise OSError("power lost")
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.install(pending, [cert])
    monkeypatch.setattr(os, "replace", real_replace)
    current = FileKeyStore(tmp_path).current()
    assert current is not None and current.version == "0001"
    assert same_public_key(current.key, current.certificate)


def test_switch_moves_key_and_chain_together(tmp_path: Path) -> None:
    store = _enrolled(tmp_path)
    pending = store.new_key("ec-p256")
    cert, _ = certificate(key=pending.key, serial=2)
    store.install(pending, [cert])
    current = FileKeyStore(tmp_path).current()
    assert current is not None and current.version == "0002"
    assert current.certificate.serial_number == 2
    assert same_public_key(current.key, current.certificate)


def test_prune_keeps_the_current_version(tmp_path: Path) -> None:
    store = _enrolled(tmp_path)
    for serial in range(2, 6):
        pending = store.new_key("ec-p256")
        store.install(pending, [certificate(key=pending.key, serial=serial)[0]])
    assert store.prune(keep=2) == ["0001", "0002", "0003"]
    assert store.versions() == ["0004", "0005"]
    assert store.current().version == "0005"  # type: ignore[union-attr]


def test_memory_store_checks_the_match_too() -> None:
    store = MemoryKeyStore()
    pending = store.new_key("ec-p256")
    with pytest.raises(KeyStoreError):
        store.install(pending, [certificate()[0]])
    assert store.current() is None
    store.install(pending, [certificate(key=pending.key)[0]])
    assert store.current() is not None
