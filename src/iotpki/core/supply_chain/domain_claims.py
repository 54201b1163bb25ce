"""Which operational domains a certificate's names speak for: "the domain is the authorization".

An organization's CA may never issue a name that lies in another organization's domain,
whatever form the name takes:

- SAN URI `urn:iotpki:domain:<d>`: membership of domain `d`, which the issuing
  organization must own (exactly that name).
- SAN dNSName, the host of a SAN URI (`https://h/...`), the domain part of a SAN
  rfc822Name, and a subject CN written like a DNS name (TLS clients that fall back to the
  CN read it as a host name): the most specific owned domain enclosing the name, if any,
  must be the issuing organization's. A name under no owned domain claims nothing.
- SAN iPAddress, an IP-literal URI host or subject CN: the most specific network a
  domain owns (`OrganizationService.add_network`) containing the address, if any, must
  be the issuing organization's.

URNs are compared as RFC 8141 §3.1 says: the "urn" scheme and the namespace identifier
(NID) case-insensitively. In the `iotpki` namespace the whole NSS of `domain:<d>` is
case-insensitive too, since domain names are (RFC 4343). `canonical_uri` rewrites those
parts in lowercase before any check, so `URN:IoTPKI:Domain:X.example` is the same claim
as `urn:iotpki:domain:x.example` and is issued in that canonical form.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.supply_chain.domain import DOMAIN_URN_PREFIX, DomainNetwork, valid_domain_name
from iotpki.core.supply_chain.ports import DomainRepository

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# RFC 8141 §2: NID = alphanum 0*30(alphanum / "-") alphanum, compared case-insensitively.
_URN = re.compile(r"^urn:([a-z0-9][a-z0-9-]{0,30}[a-z0-9]):(.*)$", re.IGNORECASE | re.DOTALL)
_DNS_LIKE = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?$")


@dataclass(frozen=True)
class DomainClaims:
    members: frozenset[str] = frozenset()  # urn:iotpki:domain:<d> (exact domains)
    hosts: frozenset[str] = frozenset()  # DNS names, lowercase, no trailing dot
    addresses: frozenset[IPAddress] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.members or self.hosts or self.addresses)


def canonical_uri(value: str) -> str:
    """`value` with the RFC 8141 case-insensitive parts of a URN in lowercase; for the
    `urn:iotpki:domain:` form, the domain too. Other URIs are returned unchanged."""
    match = _URN.match(value)
    if match is None:
        return value
    nid, nss = match.group(1).lower(), match.group(2)
    if nid == "iotpki" and nss[:7].lower() == "domain:":
        nss = nss.lower()
    return f"urn:{nid}:{nss}"


def canonical_sans(sans: Sequence[x509.GeneralName]) -> tuple[x509.GeneralName, ...]:
    return tuple(x509.UniformResourceIdentifier(canonical_uri(n.value))
                 if isinstance(n, x509.UniformResourceIdentifier) else n for n in sans)


def claims_of(subject: x509.Name, sans: Iterable[x509.GeneralName]) -> DomainClaims:
    """What the names claim; `PolicyError(san-not-allowed)` for a name whose domain cannot
    be told (a malformed domain URN, a percent-encoded URI host)."""
    members: set[str] = set()
    hosts: set[str] = set()
    addresses: set[IPAddress] = set()
    for name in sans:
        if isinstance(name, x509.DNSName):
            hosts.add(_host(name.value))
        elif isinstance(name, x509.IPAddress) and not isinstance(
                name.value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            addresses.add(name.value)
        elif isinstance(name, x509.RFC822Name):
            hosts.add(_host(name.value.rpartition("@")[2]))
        elif isinstance(name, x509.UniformResourceIdentifier):
            _uri_claim(canonical_uri(name.value), members, hosts, addresses)
    for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value if isinstance(attribute.value, str) else ""
        try:  # an IP literal in the CN is an address to a client that falls back to it
            addresses.add(ipaddress.ip_address(value))
        except ValueError:
            if _DNS_LIKE.match(value):
                hosts.add(_host(value))
    return DomainClaims(frozenset(members), frozenset(hosts), frozenset(addresses))


def _uri_claim(uri: str, members: set[str], hosts: set[str], addresses: set[IPAddress]) -> None:
    if uri.startswith(DOMAIN_URN_PREFIX):
        domain = uri[len(DOMAIN_URN_PREFIX):]
        if not valid_domain_name(domain):
            raise PolicyError(R.SAN_NOT_ALLOWED, f"malformed domain URN {uri!r}")
        members.add(domain)
        return
    if _URN.match(uri) or ":" not in uri:
        return  # other URNs name no host
    try:
        host = urlsplit(uri).hostname
    except ValueError as exc:  # e.g. an unbalanced "[" in the authority
        raise PolicyError(R.SAN_NOT_ALLOWED, f"malformed URI {uri!r}") from exc
    if not host:
        return
    if "%" in host:
        # A relying party might decode it; we cannot tell which domain it names.
        raise PolicyError(R.SAN_NOT_ALLOWED, f"percent-encoded host in URI {uri!r}")
    try:
        addresses.add(ipaddress.ip_address(host))
    except ValueError:
        hosts.add(_host(host))


def _host(name: str) -> str:
    return name.strip().lower().rstrip(".")


def enclosing(host: str) -> list[str]:
    """`a.b.c` → [`a.b.c`, `b.c`, `c`]: the domains that could own the name, most specific first."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def check_claims(domains: DomainRepository, claims: DomainClaims, organization: str,
                 authority: str) -> None:
    """Raise `PolicyError(domain-not-owned)` unless every claim is the organization's."""
    if not claims:
        return
    for name in sorted(claims.members):
        if domains.owner(name) != organization:
            _refuse(f"domain {name} is not owned by {organization}", authority)
    candidates = sorted({d for host in claims.hosts for d in enclosing(host)})
    owners = domains.owners(candidates) if candidates else {}
    for host in sorted(claims.hosts):
        owner = next((owners[d] for d in enclosing(host) if d in owners), None)
        if owner is not None and owner != organization:
            _refuse(f"name {host} lies in a domain of {owner}, not {organization}", authority)
    if claims.addresses:
        networks = domains.networks()
        for address in sorted(claims.addresses, key=str):
            network = most_specific(networks, address)
            if network is not None and network.organization != organization:
                _refuse(f"address {address} lies in {network.network} of domain "
                        f"{network.domain} ({network.organization}), not {organization}",
                        authority)


def most_specific(networks: Iterable[DomainNetwork], address: IPAddress) -> DomainNetwork | None:
    containing = [n for n in networks if address in n.network]
    return max(containing, key=lambda n: n.network.prefixlen, default=None)


def _refuse(detail: str, authority: str) -> None:
    raise PolicyError(R.DOMAIN_NOT_OWNED, f"{detail}, the organization of authority {authority}")
