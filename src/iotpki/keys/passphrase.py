"""Where the CA key passphrase comes from: an environment variable or a file, never the CLI."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from iotpki.keys.errors import KeyProtectionError

ENV_VALUE = "IOTPKI_CA_PASSPHRASE"
ENV_FILE = "IOTPKI_CA_PASSPHRASE_FILE"
DEFAULT_FILE = "ca-passphrase"


def read_passphrase(data_dir: Path) -> bytes | None:
    """$IOTPKI_CA_PASSPHRASE, else the file $IOTPKI_CA_PASSPHRASE_FILE, else
    `<data-dir>/ca-passphrase` if it exists, else None."""
    value = os.environ.get(ENV_VALUE)
    if value:
        return value.encode()
    path = Path(os.environ[ENV_FILE]) if os.environ.get(ENV_FILE) else data_dir / DEFAULT_FILE
    if not path.exists():
        if os.environ.get(ENV_FILE):
            raise KeyProtectionError(f"{ENV_FILE} names {path}, which does not exist")
        return None
    secret = path.read_bytes().strip()
    if not secret:
        raise KeyProtectionError(f"passphrase file {path} is empty")
    return secret


def create_passphrase_file(data_dir: Path) -> Path:
    """A random passphrase in `<data-dir>/ca-passphrase` (0600), for a first start without one."""
    path = data_dir / DEFAULT_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path
