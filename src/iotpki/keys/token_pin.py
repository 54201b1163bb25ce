"""Where the PKCS#11 user PIN comes from: an environment variable or a file, never the CLI,
never a key reference (those are stored), never a log line."""

from __future__ import annotations

import os
from pathlib import Path

from iotpki.keys.errors import TokenError

ENV_VALUE = "IOTPKI_PKCS11_PIN"
ENV_FILE = "IOTPKI_PKCS11_PIN_FILE"


def read_token_pin() -> str:
    """$IOTPKI_PKCS11_PIN, else the first line of the file $IOTPKI_PKCS11_PIN_FILE."""
    value = os.environ.get(ENV_VALUE)
    if value:
        return value
    name = os.environ.get(ENV_FILE)
    if not name:
        raise TokenError(f"no PKCS#11 PIN: set {ENV_VALUE} or {ENV_FILE}")
    path = Path(name)
    try:
        pin = path.read_text().splitlines()[0].strip() if path.stat().st_size else ""
    except OSError as exc:
        raise TokenError(f"{ENV_FILE} names {path}, which cannot be read "
                         f"({exc.strerror})") from exc
    if not pin:
        raise TokenError(f"PIN file {path} is empty")
    return pin
