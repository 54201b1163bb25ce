"""The software key backend: encrypted PKCS#8, passphrase sources, the development flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotpki.keys.errors import KeyNotFoundError, KeyProtectionError
from iotpki.keys.passphrase import create_passphrase_file, read_passphrase
from iotpki.keys.software import SoftwareKeyBackend


def test_no_passphrase_refuses_to_store_a_key(tmp_path: Path) -> None:
    backend = SoftwareKeyBackend(tmp_path, passphrase=None)
    with pytest.raises(KeyProtectionError, match="unencrypted"):
        backend.generate("ec-p256", "ca")
    assert list(tmp_path.iterdir()) == []


def test_development_flag_allows_unencrypted_keys_and_only_it(tmp_path: Path) -> None:
    insecure = SoftwareKeyBackend(tmp_path, passphrase=None, allow_unencrypted=True)
    ref = insecure.generate("ec-p256", "ca")
    assert b"ENCRYPTED" not in (tmp_path / ref.split(":", 1)[1]).read_bytes()
    with pytest.raises(KeyProtectionError, match="stored unencrypted"):
        SoftwareKeyBackend(tmp_path, passphrase=b"secret").load(ref)


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    ref = SoftwareKeyBackend(tmp_path, b"right").generate("ed25519", "ca")
    with pytest.raises(KeyProtectionError, match="wrong passphrase"):
        SoftwareKeyBackend(tmp_path, b"wrong").load(ref)
    assert SoftwareKeyBackend(tmp_path, b"right").load(ref) is not None


def test_references_cannot_escape_the_key_directory(tmp_path: Path) -> None:
    backend = SoftwareKeyBackend(tmp_path, b"x")
    for ref in ("software:../etc/passwd", "software:", "pkcs11:token=x", "software:.hidden"):
        with pytest.raises(KeyNotFoundError):
            backend.load(ref)


def test_passphrase_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOTPKI_CA_PASSPHRASE", raising=False)
    monkeypatch.delenv("IOTPKI_CA_PASSPHRASE_FILE", raising=False)
    assert read_passphrase(tmp_path) is None
    made = create_passphrase_file(tmp_path)
    assert made.stat().st_mode & 0o777 == 0o600
    assert read_passphrase(tmp_path) == made.read_bytes().strip()
    secret = tmp_path / "elsewhere"
    secret.write_text("from a file\n")
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE_FILE", str(secret))
    assert read_passphrase(tmp_path) == b"from a file"
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "from env")
    assert read_passphrase(tmp_path) == b"from env"
    monkeypatch.delenv("IOTPKI_CA_PASSPHRASE")
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE_FILE", str(tmp_path / "missing"))
    with pytest.raises(KeyProtectionError, match="does not exist"):
        read_passphrase(tmp_path)
