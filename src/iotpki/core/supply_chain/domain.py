"""Operational domains and how they appear in certificates (DESIGN.md §1 step 4).

A domain is named in a SAN URI `urn:iotpki:domain:<domain>`; an organization can only
issue into domains it owns.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from iotpki.core.errors import ConfigurationError

DOMAIN_URN_PREFIX = "urn:iotpki:domain:"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def valid_domain_name(name: str) -> bool:
    return _NAME.match(name) is not None


def check_domain_name(name: str) -> str:
    if not valid_domain_name(name):
        raise ConfigurationError(
            f"invalid domain name {name!r}: lowercase DNS-style labels, no wildcard")
    return name


def domain_uri(name: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(DOMAIN_URN_PREFIX + check_domain_name(name))


@dataclass(frozen=True)
class Domain:
    name: str
    organization: str
    created_at: datetime

    def __post_init__(self) -> None:
        check_domain_name(self.name)


@dataclass(frozen=True)
class DomainNetwork:
    """An IP network a domain owns: addresses in it are that domain's (most specific wins)."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    domain: str
    organization: str
    created_at: datetime


def check_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR network (`10.42.0.0/16`, `2001:db8:42::/48`); host bits must be zero."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ConfigurationError(f"invalid network {text!r}: {exc}") from exc
