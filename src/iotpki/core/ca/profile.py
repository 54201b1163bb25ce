"""Certificate profiles: what a certificate looks like, decided by the operator, not the request.

Profiles are declared in a YAML file (`profiles.yaml` in the data directory) and
validated here when loaded; an invalid file raises `ConfigurationError` naming
the profile and field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iotpki.core.errors import ConfigurationError
from iotpki.wire.keys import KEY_TYPES
from iotpki.wire.names import SAN_TYPES

PROFILE_KINDS = (
    "component",
    "device",
    "operational",
    "authorization",
    "service",
    "ocsp-responder",
    "manifest-signer",
    "code-signing",
    "cmp-protection",
    "api-client",
    "key-delivery",
    "scep-ra",
)
# Certificates of this kind authenticate REST principals bound to a subject
# (`core.integration.principal_service`); only the operator at the console issues them.
API_CLIENT_KIND = "api-client"
OPERATOR_METHODS = frozenset({"cli"})  # MethodName.OPERATOR (core.methods)
# Certificates the service itself signs or serves with: never revoked through a tenant API
# (`core.revocation.service`), replaced by the service when the operator revokes one.
INFRASTRUCTURE_KINDS = frozenset({"ocsp-responder", "cmp-protection", "manifest-signer",
                                  "key-delivery", "scep-ra"})

KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
)

EXTENDED_KEY_USAGES = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "cmc_ca": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.27"),  # RFC 6402 §2.10, RFC 9483 §3.1
}

SUBJECT_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
}

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]{0,8}))+$")
_DURATION = re.compile(r"^\s*(\d+)\s*([hdy])\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "y": timedelta(days=365)}


def parse_duration(text: str | int) -> timedelta:
    """`24h`, `90d`, `10y` (a year is 365 days); a bare integer counts days."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"bad duration {text!r}: must be positive")
        return timedelta(days=text)
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"bad duration {text!r}: use e.g. 24h, 90d or 2y")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class SANRules:
    """Which subjectAltNames a profile accepts. Wildcards are refused whatever the rules say."""

    allowed: tuple[str, ...] = ("dns", "ip", "uri")
    required: bool = False
    uri_prefixes: tuple[str, ...] = ()
    dns_suffixes: tuple[str, ...] = ()
    max_count: int = 16


@dataclass(frozen=True)
class SubjectRules:
    required: tuple[str, ...] = ("CN",)
    allowed: tuple[str, ...] = ("CN", "O", "OU", "C", "ST", "L", "serialNumber")


@dataclass(frozen=True)
class RenewalWindow:
    """When a certificate enters its renewal window: the last `fraction` of its lifetime,
    or the last `duration` before it expires. The expiry monitor announces it then."""

    fraction: float | None = 1 / 3
    duration: timedelta | None = None

    def start(self, not_before: datetime, not_after: datetime) -> datetime:
        if self.duration is not None:
            return not_after - self.duration
        assert self.fraction is not None
        return not_after - (not_after - not_before) * self.fraction

    def widest(self, validity: timedelta) -> timedelta:
        """The longest window a certificate of at most `validity` can have."""
        return self.duration if self.duration is not None else validity * (self.fraction or 0)

    def __str__(self) -> str:
        if self.duration is not None:
            return f"{self.duration.days}d" if not self.duration.seconds else str(self.duration)
        return f"{round((self.fraction or 0) * 100, 2):g}%"


def parse_renewal_window(value: Any, validity: timedelta) -> RenewalWindow:
    """`33%` (the last third of the lifetime) or a duration (`30d`, `72h`) shorter than the
    validity."""
    text = str(value).strip()
    if text.endswith("%"):
        fraction = float(text[:-1]) / 100
        if not 0 < fraction < 1:
            raise ValueError(f"renewal_window {text!r}: a percentage between 0 and 100")
        return RenewalWindow(fraction=fraction)
    duration = parse_duration(value)
    if duration >= validity:
        raise ValueError(f"renewal_window {text!r} is not shorter than the validity")
    return RenewalWindow(fraction=None, duration=duration)


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str
    validity: timedelta
    key_types: tuple[str, ...]
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...] = ()
    subject: SubjectRules = SubjectRules()
    san: SANRules = SANRules()
    ocsp_no_check: bool = False
    description: str = ""
    component_binding_oid: str | None = None  # device profiles: commit to the components
    renewal_window: RenewalWindow = RenewalWindow()  # when the expiry monitor announces
    key_archival: bool = False  # keep server-generated keys, sealed (core.ra.key_delivery)
    # Renewal with a certificate that expired less than this long ago (devices offline for
    # months); zero: an expired certificate cannot renew, the device must enroll again.
    renewal_grace: timedelta = timedelta(0)
    # Whether the holder of a certificate on hold may revoke it for good itself (CMP rr).
    # By default only an operator may: a thief holding a lost device would otherwise turn
    # the hold into a revocation and block "found → release".
    holder_revokes_hold: bool = False
    # Whether a certificate of a trusted previous stage (one chaining to a supplier anchor
    # the endpoint CA's organization trusts) needs a registration (manifest entry) naming it
    # to enroll for this profile. Without one the CSR's subject and SANs are what the
    # profile checks (RFC 9483 §4.1.1 ir signed by a manufacturer certificate).
    previous_stage_needs_registration: bool = True


    def __post_init__(self) -> None:
        _check_in(self.name, "kind", (self.kind,), PROFILE_KINDS)
        _check_in(self.name, "key_types", self.key_types, KEY_TYPES)
        _check_in(self.name, "key_usage", self.key_usage, KEY_USAGES)
        _check_in(self.name, "extended_key_usage", self.extended_key_usage, EXTENDED_KEY_USAGES)
        _check_in(self.name, "subject.allowed", self.subject.allowed, SUBJECT_ATTRIBUTES)
        _check_in(self.name, "subject.required", self.subject.required, self.subject.allowed)
        _check_in(self.name, "san.allowed", self.san.allowed, SAN_TYPES)
        if not self.key_types:
            raise ConfigurationError(f"profile {self.name}: key_types must not be empty")
        if not self.key_usage:
            raise ConfigurationError(f"profile {self.name}: key_usage must not be empty")
        if not self.subject.required and not self.san.required:
            # RFC 5280 §4.1.2.6: an empty subject needs a (critical) subjectAltName.
            raise ConfigurationError(
                f"profile {self.name}: a profile without required subject attributes "
                "must require a subjectAltName (RFC 5280 §4.1.2.6)"
            )
        if self.component_binding_oid is not None and (
                self.kind != "device" or not _OID.match(self.component_binding_oid)):
            raise ConfigurationError(
                    f"profile {self.name}: component_binding_oid is a dotted OID with arcs below "
                    "2^32, in device profiles only")
        if any("*" in s for s in self.san.dns_suffixes):
            raise ConfigurationError(f"profile {self.name}: wildcards are never issued")


def _check_in(profile: str, field: str, values: Any, known: Any) -> None:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ConfigurationError(
            f"profile {profile}: {field} has unknown value(s) {unknown}; known: {list(known)}"
        )


def _strings(profile: str, spec: Mapping[str, Any], field: str, default: Any = ()) -> tuple[str, ...]:
    value = spec.get(field, default)
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"profile {profile}: {field} must be a list of strings")
    return tuple(value)


def _flag(profile: str, spec: Mapping[str, Any], field: str, default: bool = False) -> bool:
    value = spec.get(field, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"profile {profile}: {field} must be true or false")
    return value


def _count(profile: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
        raise ConfigurationError(f"profile {profile}: san.max_count must be 1..100")
    return value


def parse_profile(name: str, spec: Mapping[str, Any]) -> Profile:
    """One profile from its mapping in the profile file; raise `ConfigurationError`."""
    known = {"kind", "validity", "key_types", "key_usage", "extended_key_usage", "subject",
             "san", "ocsp_no_check", "description", "component_binding_oid", "renewal_window",
             "key_archival", "renewal_grace", "holder_revokes_hold",
             "previous_stage_needs_registration"}
    extra = set(spec) - known
    if extra:
        raise ConfigurationError(f"profile {name}: unknown field(s) {sorted(extra)}")
    try:
        validity = parse_duration(spec["validity"])
        subject_spec = spec.get("subject", {}) or {}
        san_spec = spec.get("san", {}) or {}
        subject = SubjectRules(
            required=_strings(name, subject_spec, "required", ("CN",)),
            allowed=_strings(name, subject_spec, "allowed", SubjectRules.allowed),
        )
        san = SANRules(
            allowed=_strings(name, san_spec, "allowed", SANRules.allowed),
            required=_flag(name, san_spec, "required"),
            uri_prefixes=_strings(name, san_spec, "uri_prefixes"),
            dns_suffixes=_strings(name, san_spec, "dns_suffixes"),
            max_count=_count(name, san_spec.get("max_count", SANRules.max_count)),
        )
        return Profile(
            name=name,
            kind=str(spec["kind"]),
            validity=validity,
            key_types=_strings(name, spec, "key_types"),
            key_usage=_strings(name, spec, "key_usage"),
            extended_key_usage=_strings(name, spec, "extended_key_usage"),
            subject=subject,
            san=san,
            ocsp_no_check=_flag(name, spec, "ocsp_no_check"),
            key_archival=_flag(name, spec, "key_archival"),
            holder_revokes_hold=_flag(name, spec, "holder_revokes_hold"),
            previous_stage_needs_registration=_flag(
                name, spec, "previous_stage_needs_registration", default=True),
            description=str(spec.get("description", "")),
            component_binding_oid=str(spec["component_binding_oid"])
            if spec.get("component_binding_oid") is not None else None,
            renewal_window=parse_renewal_window(spec["renewal_window"], validity)
            if spec.get("renewal_window") is not None else RenewalWindow(),
            renewal_grace=parse_duration(spec["renewal_grace"]) if spec.get("renewal_grace")
            else timedelta(0),
        )
    except KeyError as exc:
        raise ConfigurationError(f"profile {name}: missing field {exc.args[0]}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"profile {name}: {exc}") from exc


def parse_profiles(document: Any) -> dict[str, Profile]:
    """All profiles of a profile file (`{"profiles": {name: spec}}`)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("profiles"), Mapping):
        raise ConfigurationError("profile file must contain a 'profiles:' mapping")
    profiles = {}
    for name, spec in document["profiles"].items():
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"profile {name}: must be a mapping")
        profiles[str(name)] = parse_profile(str(name), spec)
    return profiles
