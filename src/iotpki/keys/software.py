"""Software key backend: CA keys as encrypted PKCS#8 PEM files (RFC 5958, PBES2) in the data
directory. Key references look like `software:<file name>`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from iotpki.keys.errors import KeyNotFoundError, KeyProtectionError
from iotpki.wire.keys import KEY_TYPES, generate_private_key

SCHEME = "software"
UNENCRYPTED_HINT = (
    "set IOTPKI_CA_PASSPHRASE or IOTPKI_CA_PASSPHRASE_FILE, or pass "
    "--insecure-unencrypted-keys for development only"
)


class SoftwareKeyBackend:
    def __init__(self, key_dir: Path, passphrase: bytes | None, allow_unencrypted: bool = False):
        self._dir = key_dir
        self._passphrase = passphrase
        self._allow_unencrypted = allow_unencrypted
        self._loaded: dict[str, Any] = {}

    def check(self, key_type: str, location: str | None = None) -> None:
        """Raise now if a key of this type could not be made and stored."""
        if key_type not in KEY_TYPES:
            generate_private_key(key_type)  # raises the specific UnsupportedKeyError
        self._encryption()

    def generate(self, key_type: str, label: str, location: str | None = None,
                 decrypt: bool = False) -> str:
        """A software key does everything its type can (`decrypt` changes nothing)."""
        return self.import_private_key(generate_private_key(key_type), label)

    def import_private_key(self, key: Any, label: str, location: str | None = None) -> str:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{label}-{secrets.token_hex(4)}.pem"
        _write_new(self._dir / name, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, self._encryption()))
        return f"{SCHEME}:{name}"

    def load(self, key_ref: str) -> Any:
        if key_ref in self._loaded:
            return self._loaded[key_ref]
        data = self._path(key_ref).read_bytes()
        encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
        if not encrypted and not self._allow_unencrypted:
            raise KeyProtectionError(f"key {key_ref} is stored unencrypted; {UNENCRYPTED_HINT}")
        if encrypted and self._passphrase is None:
            raise KeyProtectionError(f"key {key_ref} is encrypted but no passphrase is set")
        try:
            key = serialization.load_pem_private_key(data, self._passphrase if encrypted else None)
        except (ValueError, TypeError) as exc:
            raise KeyProtectionError(f"cannot decrypt key {key_ref}: wrong passphrase?") from exc
        self._loaded[key_ref] = key
        return key

    def discard(self, key_ref: str) -> None:
        self._loaded.pop(key_ref, None)
        self._path(key_ref).unlink(missing_ok=True)

    def location_of(self, key_ref: str) -> str:
        return SCHEME

    def _encryption(self) -> serialization.KeySerializationEncryption:
        if self._passphrase is not None:
            return serialization.BestAvailableEncryption(self._passphrase)
        if self._allow_unencrypted:
            return serialization.NoEncryption()
        raise KeyProtectionError(f"refusing to store a CA key unencrypted; {UNENCRYPTED_HINT}")

    def _path(self, key_ref: str) -> Path:
        scheme, _, name = key_ref.partition(":")
        if scheme != SCHEME or not name or "/" in name or name.startswith("."):
            raise KeyNotFoundError(f"not a software key reference: {key_ref!r}")
        path = self._dir / name
        if not path.exists():
            raise KeyNotFoundError(f"key file for {key_ref} is missing from {self._dir}")
        return path


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
