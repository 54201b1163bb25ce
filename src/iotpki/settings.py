"""Settings from the command line and the environment (`IOTPKI_*`), with embedded defaults.

The environment is read here, once (`Settings.from_environment`); the composition root
(`app.py`) passes each service the part it needs, so no service reads `os.environ`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iotpki.core.revocation.crl import CRLPolicy, parse_delay

DEFAULT_DATA_DIR = Path("iotpki-data")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
DEFAULT_PKCS11_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2
DEFAULT_PKCS11_TOKEN = "pkcs11:token=iotpki"
KEY_BACKENDS = ("software", "pkcs11")
# Environment variables that set CRL timing (durations as in profiles: 24h, 7d; or 30s, 2m).
CRL_POLICY_VARIABLES = {
    "IOTPKI_CRL_VALIDITY": "full_validity", "IOTPKI_CRL_INTERVAL": "full_interval",
    "IOTPKI_DELTA_CRL_VALIDITY": "delta_validity", "IOTPKI_DELTA_CRL_INTERVAL": "delta_interval",
    "IOTPKI_CRL_FULL_AFTER_CHANGE": "full_after_change",
}


def crl_policy_from(variables: Mapping[str, str]) -> CRLPolicy:
    """A CRL policy from IOTPKI_*CRL* variables; those not set keep their defaults."""
    chosen = {name: parse_delay(variables[variable])
              for variable, name in CRL_POLICY_VARIABLES.items() if variables.get(variable)}
    return dataclasses.replace(CRLPolicy(), **chosen)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None  # None: SQLite in the data directory
    public_url: str = DEFAULT_PUBLIC_URL
    allow_unencrypted_keys: bool = False
    cmp_check_after: int | None = None  # CMP pollRep checkAfter (s); None: the approval's own
    maintenance_profile: str | None = None  # None: maintenance holds certificates (lifecycle.md)
    key_backend: str = "software"  # where new CA keys go: software or pkcs11
    pkcs11_module: Path = DEFAULT_PKCS11_MODULE
    pkcs11_token: str = DEFAULT_PKCS11_TOKEN  # RFC 7512 URI of the token new keys go to
    cmp_confirm_timeout: int = 600  # s a certificate may await certConf before it is revoked
    secret_lock_after: int = 5  # wrong secrets that lock a registration (docs/security.md)
    secret_guesses_per_minute: int = 10  # wrong secrets one client address may send a minute
    approval_queue_cap: int = 1000  # undecided manual-approval requests per authority/profile
    approval_submissions_per_minute: int = 10  # per client address
    crl_policy: CRLPolicy = field(default_factory=CRLPolicy)  # CRL validity and timing
    expiry_scan_seconds: float = 3600.0  # how often `iotpki serve` looks for expiring certs
    # Addresses of TLS-terminating proxies whose forwarded client certificate EST accepts.
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.key_backend not in KEY_BACKENDS:
            raise ValueError(f"key backend must be one of {', '.join(KEY_BACKENDS)}, "
                             f"not {self.key_backend!r}")

    @property
    def profiles_file(self) -> Path:
        return self.data_dir / "profiles.yaml"

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"

    @classmethod
    def from_environment(
        cls, data_dir: Path | None = None, database_url: str | None = None,
        public_url: str | None = None, allow_unencrypted_keys: bool = False,
    ) -> Settings:
        env = os.environ
        return cls(
            data_dir=(data_dir or Path(env.get("IOTPKI_DATA_DIR", DEFAULT_DATA_DIR))).resolve(),
            database_url=database_url or env.get("IOTPKI_DATABASE_URL") or None,
            public_url=public_url or env.get("IOTPKI_PUBLIC_URL", DEFAULT_PUBLIC_URL),
            allow_unencrypted_keys=allow_unencrypted_keys
            or env.get("IOTPKI_INSECURE_UNENCRYPTED_KEYS") == "1",
            cmp_check_after=int(env["IOTPKI_CMP_CHECK_AFTER"])
            if env.get("IOTPKI_CMP_CHECK_AFTER") else None,
            key_backend=env.get("IOTPKI_KEY_BACKEND") or "software",
            pkcs11_module=Path(env.get("IOTPKI_PKCS11_MODULE") or DEFAULT_PKCS11_MODULE),
            pkcs11_token=env.get("IOTPKI_PKCS11_TOKEN") or DEFAULT_PKCS11_TOKEN,
            maintenance_profile=env.get("IOTPKI_MAINTENANCE_PROFILE") or None,
            cmp_confirm_timeout=int(env.get("IOTPKI_CMP_CONFIRM_TIMEOUT") or 600),
            secret_lock_after=int(env.get("IOTPKI_SECRET_LOCK_AFTER") or 5),
            secret_guesses_per_minute=int(env.get("IOTPKI_SECRET_GUESSES_PER_MINUTE") or 10),
            approval_queue_cap=int(env.get("IOTPKI_APPROVAL_QUEUE_CAP") or 1000),
            approval_submissions_per_minute=int(
                env.get("IOTPKI_APPROVAL_SUBMISSIONS_PER_MINUTE") or 10),
            crl_policy=crl_policy_from(env),
            expiry_scan_seconds=float(env.get("IOTPKI_EXPIRY_SCAN_SECONDS") or 3600),
            trusted_proxies=tuple(p.strip() for p in env.get("IOTPKI_TRUSTED_PROXIES", "").split(",")
                                  if p.strip()),
        )
