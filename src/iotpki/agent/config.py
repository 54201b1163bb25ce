"""The agent's configuration file (TOML):

```toml
directory = "/var/lib/iotpki-agent"        # key store, anchors, state
protocol = "est"                           # or "cmp", or "acme"
url = "https://pki.example:8443"           # EST base URL, the CMP URL, or the ACME directory URL
label = ""                                 # EST label (CMP: put /p/<label> in the URL)
trust_anchors = ["9f86d0...", ...]         # SHA-256 fingerprints of the pinned roots
subject = "CN=sensor-0001"
key_type = "ec-p256"
# key_uri = "pkcs11:token=device;object=identity?pin-source=file:/etc/iotpki-agent/pin"
# pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"   # keys on a token (agent.token_store)

[enrollment]                               # what proves the first enrollment
registration_id = "..."                    # one-time secret ...
secret_file = "/etc/iotpki-agent/secret"   # (or secret = "...")
previous_certificate = "device.pem"        # ... or the previous-stage identity
previous_key = "device.key"
eab_key_id = "..."                         # ACME: External Account Binding key id ...
eab_hmac_file = "eab.key"              # ... and its HMAC key, base64url (or eab_hmac)

[renewal]
fraction = 0.6667                          # of the lifetime
jitter = 0.05                              # ± of the lifetime
backoff_initial = 60                       # seconds, doubled per failure ...
backoff_maximum = 21600                    # ... up to this
grace = 15552000                           # renew after expiry for this long (profile)
check_interval = 3600                      # seconds between checks in `run`

[[hooks]]                                  # run after each new certificate
command = ["systemctl", "reload", "mosquitto"]
timeout = 30
```
"""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.agent.credentials import Credentials
from iotpki.agent.renewal import RenewalPolicy
from iotpki.agent.trust import normalize_fingerprint
from iotpki.wire.names import parse_subject

# Debian's SoftHSM2; python-pkcs11 (the `hsm` extra) is imported only when a token is used.
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class Hook:
    command: tuple[str, ...]
    timeout: float = 30.0


@dataclass(frozen=True)
class AgentConfig:
    directory: Path
    protocol: str
    url: str
    trust_anchors: tuple[str, ...]
    subject: x509.Name
    key_type: str = "ec-p256"
    label: str = ""
    enrollment: Mapping[str, str] = field(default_factory=dict)
    policy: RenewalPolicy = field(default_factory=RenewalPolicy)
    check_interval: float = 3600.0
    hooks: tuple[Hook, ...] = ()
    key_uri: str | None = None  # RFC 7512: device keys on this token instead of in files
    pkcs11_module: str = DEFAULT_MODULE

    def credentials(self) -> Credentials:
        """Read the enrollment credentials (files are read only when needed)."""
        section = self.enrollment
        secret = section.get("secret")
        if secret is None and section.get("secret_file"):
            secret = Path(section["secret_file"]).read_text().strip()
        chain: tuple[x509.Certificate, ...] = ()
        key = None
        if section.get("previous_certificate") and section.get("previous_key"):
            chain = tuple(x509.load_pem_x509_certificates(
                Path(section["previous_certificate"]).read_bytes()))
            key = serialization.load_pem_private_key(
                Path(section["previous_key"]).read_bytes(), None)
        return Credentials(section.get("registration_id"), secret, key, chain,
                           section.get("previous_key"), section.get("previous_certificate"))

    def eab(self) -> tuple[str, bytes] | None:
        """ACME External Account Binding (RFC 8555 §7.3.4): key id and HMAC key, if set."""
        section = self.enrollment
        if not section.get("eab_key_id"):
            return None
        text = section.get("eab_hmac")
        if text is None and section.get("eab_hmac_file"):
            text = Path(section["eab_hmac_file"]).read_text().strip()
        if not text:
            raise ConfigError("eab_key_id needs eab_hmac or eab_hmac_file")
        try:
            key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError as exc:
            raise ConfigError(f"eab_hmac is not base64url: {exc}") from exc
        return section["eab_key_id"], key


class ConfigError(ValueError):
    """A configuration file that is missing a field or has a wrong value."""


def load_config(path: Path) -> AgentConfig:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    base = path.parent
    return parse_config(document, base)


def parse_config(document: Mapping[str, Any], base: Path = Path()) -> AgentConfig:
    try:
        protocol = str(document.get("protocol", "est"))
        if protocol not in ("est", "cmp", "acme"):
            raise ConfigError(f"protocol must be est, cmp or acme, not {protocol!r}")
        renewal = document.get("renewal", {})
        enrollment = {k: str(_relative(base, v) if k.endswith(("_file", "_certificate", "_key"))
                             else v) for k, v in document.get("enrollment", {}).items()}
        return AgentConfig(
            directory=_relative(base, document["directory"]), protocol=protocol,
            url=str(document["url"]), label=str(document.get("label", "")),
            trust_anchors=tuple(normalize_fingerprint(f) for f in document["trust_anchors"]),
            subject=parse_subject(str(document["subject"])),
            key_type=str(document.get("key_type", "ec-p256")), enrollment=enrollment,
            policy=_policy(renewal), check_interval=float(renewal.get("check_interval", 3600)),
            hooks=tuple(Hook(tuple(h["command"]), float(h.get("timeout", 30)))
                        for h in document.get("hooks", [])),
            key_uri=str(document["key_uri"]) if document.get("key_uri") else None,
            pkcs11_module=str(document.get("pkcs11_module", DEFAULT_MODULE)))
    except KeyError as exc:
        raise ConfigError(f"missing configuration field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _policy(section: Mapping[str, Any]) -> RenewalPolicy:
    default = RenewalPolicy()
    return RenewalPolicy(
        fraction=float(section.get("fraction", default.fraction)),
        jitter=float(section.get("jitter", default.jitter)),
        backoff_initial=timedelta(seconds=float(section.get(
            "backoff_initial", default.backoff_initial.total_seconds()))),
        backoff_maximum=timedelta(seconds=float(section.get(
            "backoff_maximum", default.backoff_maximum.total_seconds()))),
        grace=timedelta(seconds=float(section.get("grace", 0))))


def _relative(base: Path, value: Any) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() else base / path
