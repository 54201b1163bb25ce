"""Settings from the command line, the environment (`IOTPKI_*`) and the data directory's
`settings.yaml`, with embedded defaults.

The environment is read here and only here (`Settings.from_environment`); the composition
root (`app.py`) passes each service the part it needs, so no service reads `os.environ`, and
none is patched after it is built. `settings.yaml` keeps what `iotpki init` and `iotpki
config set` chose (the public URL); an option or variable given for one run takes
precedence over it. `iotpki serve` hands the settings it built to its listener processes
whole (`Settings.handoff`, one environment variable read back by `worker_settings`), so
every worker runs with exactly the parent's settings, the HTTPS files and the command-line
options included.

Not here, on purpose: the CA key passphrase and the token PIN (`keys/passphrase.py`,
`keys/token_pin.py`) are read where a key is opened, so that no secret sits in a settings
object that is printed, compared or handed to another process."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iotpki.core.ca.urls import normalize_public_url
from iotpki.core.errors import ConfigurationError
from iotpki.core.revocation.crl_policy import CRLPolicy, parse_delay

DEFAULT_DATA_DIR = Path("iotpki-data")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"  # where `iotpki serve` listens by default
SETTINGS_FILE = "settings.yaml"
STORED_KEYS = ("public_url", "previous_public_urls")
DEFAULT_PKCS11_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")  # Debian's softhsm2
DEFAULT_PKCS11_TOKEN = "pkcs11:token=iotpki"
KEY_BACKENDS = ("software", "pkcs11")
HANDOFF = "IOTPKI_SERVE_SETTINGS"  # `iotpki serve` → its listener processes (JSON)
KIB, MIB = 1024, 1024 * 1024
# Environment variables that set CRL timing (durations as in profiles: 24h, 7d; or 30s, 2m).
CRL_POLICY_VARIABLES = {
    "IOTPKI_CRL_VALIDITY": "full_validity", "IOTPKI_CRL_INTERVAL": "full_interval",
    "IOTPKI_DELTA_CRL_VALIDITY": "delta_validity", "IOTPKI_DELTA_CRL_INTERVAL": "delta_interval",
    "IOTPKI_CRL_FULL_AFTER_CHANGE": "full_after_change",
}
# Listener limits (docs/security.md, `iotpki.listener`): variable → field.
LISTENER_VARIABLES = {
    "IOTPKI_HEADER_TIMEOUT": "header_timeout", "IOTPKI_BODY_TIMEOUT": "body_timeout",
    "IOTPKI_MAX_HEADER_BYTES": "max_header_bytes", "IOTPKI_MAX_CONNECTIONS": "max_connections",
    "IOTPKI_MAX_CONNECTIONS_PER_CLIENT": "max_connections_per_client",
}


@dataclass(frozen=True)
class ListenerLimits:
    """Per worker process of each listener (`iotpki.listener`, issue 15 items 2 and 3)."""

    header_timeout: float = 10.0  # s for the request line and headers
    body_timeout: float = 30.0  # s for the whole body after the head
    max_header_bytes: int = 32 * KIB  # request line + headers
    max_connections: int = 1000  # open connections per worker process
    max_connections_per_client: int = 50  # from one client address, per worker
    exempt: frozenset[str] = frozenset()  # addresses without a per-client cap (proxies)


@dataclass(frozen=True)
class BodyLimits:
    """REST body caps in bytes (`protocols/rest/body_guard.py`): `default` for every route,
    `routes` for path suffixes that carry bulk data (manifests, bulk registrations and
    revocations)."""

    default: int = 64 * KIB
    routes: Mapping[str, int] = field(default_factory=lambda: {
        "/manifests/import": 16 * MIB, "/manifests/export": 1 * MIB,
        "/registrations/bulk": 4 * MIB, "/certificates/bulk-revoke": 1 * MIB})

    def for_path(self, path: str) -> int:
        return next((cap for suffix, cap in self.routes.items() if path.endswith(suffix)),
                    self.default)


@dataclass(frozen=True)
class TLSFiles:
    """The HTTPS listener's certificate chain, key and client-CA store (PEM files)."""

    certificate: Path
    key: Path
    client_cas: Path
    managed: bool = False  # issued by `iotpki serve` itself: replaced when revoked (tls_guard)


def read_stored_settings(data_dir: Path) -> dict[str, Any]:
    """What `<data-dir>/settings.yaml` keeps (nothing if there is no such file)."""
    path = data_dir / SETTINGS_FILE
    if not path.is_file():
        return {}
    import yaml  # only where a data directory has the file

    try:
        document = load_yaml(path.read_text()) or {}
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
    listener: ListenerLimits = field(default_factory=ListenerLimits)
    rest_bodies: BodyLimits = field(default_factory=BodyLimits)
    tls: TLSFiles | None = None  # HTTPS files; set by `iotpki serve` for its listener
    tls_check_seconds: float = 5.0  # how often a managed HTTPS certificate's status is read
    # A PostgreSQL read replica for OCSP, CRL serving and API listings (store/replica.py),
    # used while it trails the primary by at most database_read_max_lag seconds.
    database_read_url: str | None = None
    database_read_max_lag: float = 0.5
    # Origins (https://host[:port]) the console is also reached at, through a reverse proxy
    # that does not keep the host and port: its POSTs must name one of them or its own.
    console_origins: tuple[str, ...] = ()

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

    def with_trusted_proxies(self, proxies: typing.Iterable[str]) -> Settings:
        """Proxies whose forwarded client certificate EST believes; they are also exempt from
        the listeners' per-client connection cap."""
        chosen = tuple(p.strip() for p in proxies if p.strip())
        return dataclasses.replace(self, trusted_proxies=chosen, listener=dataclasses.replace(
            self.listener, exempt=frozenset(chosen)))

    @classmethod
    def from_environment(
        cls, data_dir: Path | None = None, database_url: str | None = None,
        public_url: str | None = None, allow_unencrypted_keys: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Arguments (the command line's options) first, then `IOTPKI_*` variables of `env`
        (the process environment unless given), then `settings.yaml`, then the defaults."""
        env = os.environ if env is None else env
        directory = (data_dir or Path(env.get("IOTPKI_DATA_DIR", DEFAULT_DATA_DIR))).resolve()
        stored = read_stored_settings(directory)
        public, source = _public_url(public_url, env.get("IOTPKI_PUBLIC_URL"), stored,
                                     directory)
        return cls(
            data_dir=directory,
            database_url=database_url or env.get("IOTPKI_DATABASE_URL") or None,
            database_read_url=env.get("IOTPKI_DATABASE_READ_URL") or None,
            database_read_max_lag=float(env.get("IOTPKI_DATABASE_READ_MAX_LAG") or 0.5),
            public_url=public, public_url_source=source,
            previous_public_urls=_previous(public, stored),
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
            listener=listener_limits_from(env),
            rest_bodies=body_limits_from(env),
            tls_check_seconds=float(env.get("IOTPKI_TLS_CHECK_SECONDS") or 5),
            console_origins=console_origins(env.get("IOTPKI_CONSOLE_ORIGINS", "")),
        ).with_trusted_proxies(env.get("IOTPKI_TRUSTED_PROXIES", "").split(","))

    # -- `iotpki serve` → its listener processes ------------------------------------------

    def handoff(self) -> str:
        """These settings as JSON, for `worker_settings` in another process."""
        return json.dumps(_encode(self), sort_keys=True)

    @classmethod
    def from_handoff(cls, text: str) -> Settings:
        settings = _decode(cls, json.loads(text))
        assert isinstance(settings, Settings)
        return settings

    def export(self) -> None:
        """Hand these settings to the processes this one starts (uvicorn's workers, the
        HTTPS listener): they inherit the environment."""
        os.environ[HANDOFF] = self.handoff()


@functools.cache
def worker_settings() -> Settings:
    """In a listener process: the settings `iotpki serve` handed over, read once; without a
    hand-over (the factory run by uvicorn directly), the environment's."""
    text = os.environ.get(HANDOFF)
    return Settings.from_handoff(text) if text else Settings.from_environment()


def listener_limits_from(variables: Mapping[str, str]) -> ListenerLimits:
    default = ListenerLimits()
    chosen = {name: type(getattr(default, name))(float(variables[variable]))
              for variable, name in LISTENER_VARIABLES.items() if variables.get(variable)}
    return dataclasses.replace(default, **chosen)


def body_limits_from(variables: Mapping[str, str]) -> BodyLimits:
    """IOTPKI_REST_MAX_BODY (default cap) and IOTPKI_REST_MAX_BULK_BODY (every bulk route),
    in bytes."""
    limits = BodyLimits()
    default = int(variables.get("IOTPKI_REST_MAX_BODY") or limits.default)
    bulk = variables.get("IOTPKI_REST_MAX_BULK_BODY")
    routes = {k: int(bulk) for k in limits.routes} if bulk else dict(limits.routes)
    return BodyLimits(default, routes)


def _encode(value: object) -> object:
    """Settings as JSON values: dataclasses as objects, durations in seconds, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | frozenset):
        return [_encode(v) for v in (sorted(value) if isinstance(value, frozenset) else value)]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(hint: Any, data: Any) -> Any:
    """The inverse of `_encode`, led by the type annotations."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if data is None:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _decode(inner, data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: _decode(hints[f.name], data[f.name])
                       for f in dataclasses.fields(hint) if f.init and f.name in data})
    if hint is timedelta:
        return timedelta(seconds=data)
    if hint is Path:
        return Path(data)
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in data)
    if origin is frozenset:
        return frozenset(_decode(args[0], v) for v in data)
    if origin in (Mapping, dict):
        return {k: _decode(args[1], v) for k, v in data.items()}
    if hint is float:
        return float(data)
    return data


def load_yaml(text: str) -> Any:
    """A YAML document with the safe loader, libyaml's C one when PyYAML was built with it:
    every command and test parses the profile and endpoint files, and the pure-Python
    loader spends tens of milliseconds on them. Raises yaml.YAMLError."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def console_origins(text: str) -> tuple[str, ...]:
    """`IOTPKI_CONSOLE_ORIGINS`: comma-separated origins as a browser sends them in `Origin`
    (RFC 6454 §6.2: scheme, host, a port only if not the scheme's default; no path)."""
    origins = []
    for given in (t.strip() for t in text.split(",")):
        if not given:
            continue
        parts = urlsplit(given)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment or parts.username or port == -1:
            raise ValueError(f"IOTPKI_CONSOLE_ORIGINS: {given!r} is not an https origin "
                             "(https://host or https://host:port)")
        host = parts.hostname.lower()
        host = f"[{host}]" if ":" in host else host.encode("idna").decode()  # as browsers send
        origins.append(f"https://{host}{'' if port in (None, 443) else f':{port}'}")
    return tuple(origins)


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


def _previous(public: str, stored: dict[str, Any]) -> tuple[str, ...]:
    """The base URLs certificates may name besides `public`: those settings.yaml keeps, and
    the stored URL itself when an option or variable overrides it for this run."""
    earlier = [*stored.get("previous_public_urls", ()), stored.get("public_url")]
    return tuple(dict.fromkeys(u for u in earlier if u and u != public))
