"""Settings from the command line, the environment (`IOTPKI_*`) and the data directory's
`settings.yaml`, with embedded defaults.

The environment is read here, once (`Settings.from_environment`); the composition root
(`app.py`) passes each service the part it needs, so no service reads `os.environ`.
`settings.yaml` keeps what `iotpki init` and `iotpki config set` chose (the public URL);
an option or variable given for one run takes precedence over it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iotpki.core.ca.urls import normalize_public_url
from iotpki.core.errors import ConfigurationError
from iotpki.core.revocation.crl import CRLPolicy, parse_delay

DEFAULT_DATA_DIR = Path("iotpki-data")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"  # where `iotpki serve` listens by default
SETTINGS_FILE = "settings.yaml"
STORED_KEYS = ("public_url", "previous_public_urls")
DEFAULT_PKCS11_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2
DEFAULT_PKCS11_TOKEN = "pkcs11:token=iotpki"
KEY_BACKENDS = ("software", "pkcs11")
# Environment variables that set CRL timing (durations as in profiles: 24h, 7d; or 30s, 2m).
CRL_POLICY_VARIABLES = {
    "IOTPKI_CRL_VALIDITY": "full_validity", "IOTPKI_CRL_INTERVAL": "full_interval",
    "IOTPKI_DELTA_CRL_VALIDITY": "delta_validity", "IOTPKI_DELTA_CRL_INTERVAL": "delta_interval",
    "IOTPKI_CRL_FULL_AFTER_CHANGE": "full_after_change",
}


def read_stored_settings(data_dir: Path) -> dict[str, Any]:
    """What `<data-dir>/settings.yaml` keeps (nothing if there is no such file)."""
    path = data_dir / SETTINGS_FILE
    if not path.is_file():
        return {}
    import yaml  # only where a data directory has the file

    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from exc
    unknown = sorted(set(document) - set(STORED_KEYS)) if isinstance(document, dict) else None
    if unknown is None or unknown:
        raise ConfigurationError(f"{path}: a mapping of {', '.join(STORED_KEYS)} expected"
                                 + (f", not {', '.join(map(str, unknown))}" if unknown else ""))
    try:
        if "public_url" in document:
            document["public_url"] = normalize_public_url(str(document["public_url"]))
        document["previous_public_urls"] = [
            normalize_public_url(str(u)) for u in document.get("previous_public_urls") or ()]
    except ValueError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    return document


def store_settings(data_dir: Path, **values: Any) -> Path:
    """Merge `values` into `<data-dir>/settings.yaml` (written whole, then renamed)."""
    import yaml

    document = {**read_stored_settings(data_dir), **values}
    path = data_dir / SETTINGS_FILE
    partial = path.with_suffix(".yaml.partial")
    partial.write_text("# iotpki settings kept with the data directory (`iotpki config`)\n"
                       + yaml.safe_dump(document, sort_keys=False))
    partial.replace(path)
    return path


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
    # Base URLs used before (settings.yaml): CRLs name them too, for older certificates.
    previous_public_urls: tuple[str, ...] = ()
    public_url_source: str = "default"  # where public_url came from (`iotpki config show`)
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
    # ACME challenge validation (docs/acme.md): where http-01 and tls-alpn-01 connect, the
    # DNS server dns-01 asks (host:port; None: the system's), and for labs and tests an
    # address to connect to instead of resolving the identifier.
    acme_http_port: int = 80
    acme_tls_port: int = 443
    acme_resolver: str | None = None
    acme_connect_address: str | None = None
    acme_orders_per_hour: int = 300  # per account (0: unlimited)
    acme_organization_orders_per_hour: int = 3000  # per organization (0: unlimited)

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
        directory = (data_dir or Path(env.get("IOTPKI_DATA_DIR", DEFAULT_DATA_DIR))).resolve()
        stored = read_stored_settings(directory)
        public, source = _public_url(public_url, env.get("IOTPKI_PUBLIC_URL"), stored,
                                     directory)
        return cls(
            data_dir=directory,
            database_url=database_url or env.get("IOTPKI_DATABASE_URL") or None,
            public_url=public, public_url_source=source,
            previous_public_urls=tuple(stored.get("previous_public_urls", ())),
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
            acme_http_port=int(env.get("IOTPKI_ACME_HTTP_PORT") or 80),
            acme_tls_port=int(env.get("IOTPKI_ACME_TLS_PORT") or 443),
            acme_resolver=env.get("IOTPKI_ACME_RESOLVER") or None,
            acme_connect_address=env.get("IOTPKI_ACME_CONNECT_ADDRESS") or None,
            acme_orders_per_hour=int(env.get("IOTPKI_ACME_ORDERS_PER_HOUR") or 300),
            acme_organization_orders_per_hour=int(
                env.get("IOTPKI_ACME_ORGANIZATION_ORDERS_PER_HOUR") or 3000),
            trusted_proxies=tuple(p.strip() for p in env.get("IOTPKI_TRUSTED_PROXIES", "").split(",")
                                  if p.strip()),
        )


def _public_url(option: str | None, variable: str | None, stored: dict[str, Any],
                data_dir: Path) -> tuple[str, str]:
    """(public URL, where it came from): the option, the variable, settings.yaml, default."""
    if option:
        return normalize_public_url(option), "--public-url or IOTPKI_PUBLIC_URL"
    if variable:
        return normalize_public_url(variable), "IOTPKI_PUBLIC_URL"
    if "public_url" in stored:
        return stored["public_url"], str(data_dir / SETTINGS_FILE)
    return DEFAULT_PUBLIC_URL, "default"
