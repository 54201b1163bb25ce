"""Operational domains and how they appear in certificates (DESIGN.md §1 step 4).

A domain is named in a SAN URI `urn:iotpki:domain:<domain>`; an organization can only
issue into domains it owns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from iotpki.core.errors import ConfigurationError

DOMAIN_URN_PREFIX = "urn:iotpki:domain:"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def check_domain_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"invalid domain name {name!r}: lowercase DNS-style labels, no wildcard")
    return name


def domain_uri(name: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(DOMAIN_URN_PREFIX + check_domain_name(name))


def domains_named(sans: Iterable[x509.GeneralName]) -> set[str]:
    """The domains a certificate's SANs name through `urn:iotpki:domain:` URIs."""
    return {
        name.value[len(DOMAIN_URN_PREFIX):]
        for name in sans
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.startswith(DOMAIN_URN_PREFIX)
    }


@dataclass(frozen=True)
class Domain:
    name: str
    organization: str
    created_at: datetime

    def __post_init__(self) -> None:
        check_domain_name(self.name)
