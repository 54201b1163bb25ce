"""The device's key store: versioned key and chain files with an atomically switched
"current" pointer (certbot's live/archive layout).

```
<dir>/archive/0001/key.pem     private key, PKCS#8 PEM, mode 0600, written before enrollment
<dir>/archive/0001/chain.pem   certificate + intermediates, written after enrollment
<dir>/current -> archive/0001  symbolic link, replaced with rename(2)
```

A new key goes into a fresh version directory; only when its certificate has arrived and
matches the key is `current` switched, by renaming a new symbolic link over the old one
(POSIX rename is atomic). A crash at any point leaves `current` on a complete, matching
pair; an unfinished version directory is ignored and its number never reused.

`KeyStore` is the interface the agent uses: a PKCS#11 token store implements the same
three methods with the key on the token (only the chain files live here then).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.wire.chain import encode_pem_chain
from iotpki.wire.errors import PKIError
from iotpki.wire.keys import generate_private_key

KEY_FILE = "key.pem"
CHAIN_FILE = "chain.pem"
ANCHORS_FILE = "anchors.pem"
CURRENT = "current"
ARCHIVE = "archive"


class KeyStoreError(PKIError):
    """A key store that cannot be read or written, or a certificate that does not match."""


@dataclass(frozen=True)
class Identity:
    """The device's current key and chain (leaf first, without the trust anchor)."""

    key: Any  # an object with sign() and public_key(), software or token
    chain: tuple[x509.Certificate, ...]
    version: str
    key_file: Path | None = None  # for TLS client authentication (software keys only)
    chain_file: Path | None = None

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


@dataclass(frozen=True)
class PendingKey:
    """A new key waiting for its certificate."""

    key: Any
    version: str


class KeyStore(Protocol):
    def current(self) -> Identity | None: ...

    def new_key(self, key_type: str) -> PendingKey: ...

    def install(self, pending: PendingKey, chain: Sequence[x509.Certificate]) -> Identity: ...

    def prune(self, keep: int = 3) -> list[str]:
        """Remove all but the newest `keep` versions, never the current one."""
        ...


def same_public_key(key: Any, certificate: x509.Certificate) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(serialization.Encoding.DER, spki)
                == certificate.public_key().public_bytes(serialization.Encoding.DER, spki))


class FileKeyStore:
    """Software keys in files; see the module docstring for the layout."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- reading ----------------------------------------------------------------------------

    def current(self) -> Identity | None:
        link = self.directory / CURRENT
        if not link.is_symlink():
            return None
        version_dir = self.directory / os.readlink(link)
        try:
            chain = tuple(x509.load_pem_x509_certificates(
                (version_dir / CHAIN_FILE).read_bytes()))
            key = self._read_key(version_dir, chain)
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"current identity in {version_dir} is unreadable: {exc}") from exc
        return Identity(key, chain, version_dir.name, self._key_file(version_dir),
                        version_dir / CHAIN_FILE)

    def _read_key(self, version_dir: Path, chain: Sequence[x509.Certificate]) -> Any:
        return serialization.load_pem_private_key((version_dir / KEY_FILE).read_bytes(), None)

    def _key_file(self, version_dir: Path) -> Path | None:
        """The key as a file (for TLS client authentication), if the key is in one."""
        return version_dir / KEY_FILE

    def versions(self) -> list[str]:
        archive = self.directory / ARCHIVE
        return sorted(p.name for p in archive.iterdir()) if archive.is_dir() else []

    # -- writing ----------------------------------------------------------------------------

    def new_key(self, key_type: str) -> PendingKey:
        key = generate_private_key(key_type)
        version_dir = self._new_version_dir()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        write_private(version_dir / KEY_FILE, pem)
        return PendingKey(key, version_dir.name)

    def install(self, pending: PendingKey, chain: Sequence[x509.Certificate]) -> Identity:
        if not chain or not same_public_key(pending.key, chain[0]):
            raise KeyStoreError("the certificate does not match the new key; not installed")
        version_dir = self.directory / ARCHIVE / pending.version
        write_atomic(version_dir / CHAIN_FILE, encode_pem_chain(chain), 0o644)
        self._switch_current(version_dir)
        return Identity(pending.key, tuple(chain), pending.version, self._key_file(version_dir),
                        version_dir / CHAIN_FILE)

    def prune(self, keep: int = 3) -> list[str]:
        """Remove old versions, never the current one; returns the removed names."""
        current = self.current()
        removed = []
        for name in self.versions()[:-keep] if keep > 0 else self.versions():
            if current is not None and name == current.version:
                continue
            version_dir = self.directory / ARCHIVE / name
            self._discard_key(version_dir)
            for child in version_dir.iterdir():
                child.unlink()
            version_dir.rmdir()
            removed.append(name)
        return removed

    def _discard_key(self, version_dir: Path) -> None:
        """Destroy a pruned version's key where it lives outside the directory (nothing
        here: the key file goes with the directory)."""

    def _new_version_dir(self) -> Path:
        archive = self.directory / ARCHIVE
        archive.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        numbers = [int(n) for n in self.versions() if n.isdigit()]
        number = max(numbers, default=0) + 1
        while True:  # another process may take the same number: mkdir decides
            try:
                version_dir = archive / f"{number:04d}"
                version_dir.mkdir(mode=0o700)
                return version_dir
            except FileExistsError:
                number += 1

    def _switch_current(self, version_dir: Path) -> None:
        link = self.directory / CURRENT
        temporary = self.directory / f".{CURRENT}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(version_dir.relative_to(self.directory))
        os.replace(temporary, link)  # rename(2): atomic on POSIX
        fsync_directory(self.directory)

    # -- trust anchors ----------------------------------------------------------------------

    def anchors(self) -> list[x509.Certificate]:
        path = self.directory / ANCHORS_FILE
        return x509.load_pem_x509_certificates(path.read_bytes()) if path.exists() else []

    def save_anchors(self, anchors: Sequence[x509.Certificate]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.directory / ANCHORS_FILE, encode_pem_chain(anchors), 0o644)


def write_private(path: Path, data: bytes) -> None:
    """A new file created with mode 0600 (never readable by others, even briefly)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary file, fsync, rename over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class MemoryKeyStore:
    """Keys and chains in memory only: the virtual devices of the fleet simulator (CMP;
    EST needs key files for TLS client authentication)."""

    def __init__(self) -> None:
        self._current: Identity | None = None
        self._versions = 0

    def current(self) -> Identity | None:
        return self._current

    def new_key(self, key_type: str) -> PendingKey:
        self._versions += 1
        return PendingKey(generate_private_key(key_type), f"{self._versions:04d}")

    def install(self, pending: PendingKey, chain: Sequence[x509.Certificate]) -> Identity:
        if not chain or not same_public_key(pending.key, chain[0]):
            raise KeyStoreError("the certificate does not match the new key; not installed")
        self._current = Identity(pending.key, tuple(chain), pending.version)
        return self._current

    def prune(self, keep: int = 3) -> list[str]:
        return []  # only the current key is ever held
