"""A SoftHSM2 token of the test's own: a config file and token directory under a tmp dir,
one token initialized with `softhsm2-util --init-token --free` (the real tool, a real token).

SoftHSM2 reads SOFTHSM2_CONF and lists its tokens when the module is initialized, once per
process: a process sees the tokens that existed when it first used the module. The suite
therefore makes its token(s) before any PKCS#11 call (a session-scoped fixture) and tests
use distinct key labels on them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MODULE = Path(os.environ.get("IOTPKI_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"))
PIN = "1234-test-pin"
SO_PIN = "5678-test-so-pin"


@dataclass(frozen=True)
class SoftHSM:
    conf: Path
    label: str
    pin: str = PIN

    @property
    def uri(self) -> str:
        return f"pkcs11:token={self.label}"

    def environment(self) -> dict[str, str]:
        """What an iotpki process needs to use this token by default."""
        return {"SOFTHSM2_CONF": str(self.conf), "IOTPKI_PKCS11_PIN": self.pin,
                "IOTPKI_PKCS11_MODULE": str(MODULE), "IOTPKI_PKCS11_TOKEN": self.uri}


def softhsm_available() -> str | None:
    """None if SoftHSM2 can be used, else why not."""
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not installed (scripts/system-packages.sh)"
    if not MODULE.exists():
        return f"PKCS#11 module {MODULE} missing"
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 not installed (the hsm extra)"
    return None


def make_softhsm(directory: Path, labels: tuple[str, ...] = ("iotpki-test",)) -> SoftHSM:
    """A SoftHSM2 config in `directory` with one initialized token per label (the first is
    the one returned)."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in labels:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                        "--pin", PIN, "--so-pin", SO_PIN],
                       env=env, check=True, capture_output=True, timeout=60)
    return SoftHSM(conf, labels[0])
