"""Public URLs that go into every certificate: CRL (RFC 5280 §4.2.1.13; one per CRL shard
of a sharded authority), OCSP and CA issuers (§4.2.2.1), and the names a CRL's
issuingDistributionPoint carries (§5.2.5)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


def normalize_public_url(url: str) -> str:
    """The base URL relying parties reach (`http://pki.example:8080`, optionally with a
    path prefix), without a trailing `/`; ValueError when it cannot be one."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"public URL {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"public URL {url!r} must be http:// or https:// with a host, "
                         "like http://pki.example:8080")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"public URL {url!r} must be a base URL: no query, fragment or "
                         "user name")
    return text.rstrip("/")


SHARD_SEPARATOR = "."  # never in a label (lowercase letters, digits, dashes)


def crl_scope_name(authority: str, shard: int | None = None) -> str:
    """`<label>` for the authority's whole CRL, `<label>.<shard>` for one CRL shard
    (`core.ca.crl_shard`): the name in `/crl/<name>.crl` and `/crl/<name>-delta.crl`."""
    return authority if shard is None else f"{authority}{SHARD_SEPARATOR}{shard}"


@dataclass(frozen=True)
class PublicURLs:
    """URLs built from the operator's public base URL (plain HTTP, as relying parties expect).

    `previous` are base URLs used before the current one: certificates issued then name
    them in their CRL distribution points, so a CRL names them too in its
    issuingDistributionPoint (one scope, several distribution points) and stays in scope
    for those certificates."""

    base: str
    previous: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.base.startswith(("http://", "https://")):
            raise ValueError(f"public base URL must be http(s): {self.base!r}")
        object.__setattr__(self, "base", self.base.rstrip("/"))
        earlier = dict.fromkeys(p.rstrip("/") for p in self.previous)
        earlier.pop(self.base, None)
        object.__setattr__(self, "previous", tuple(earlier))

    def crl(self, authority: str, shard: int | None = None) -> str:
        return f"{self.base}/crl/{crl_scope_name(authority, shard)}.crl"

    def crl_names(self, authority: str, shard: int | None = None) -> list[str]:
        """The full CRL's distribution points, current first: what its
        issuingDistributionPoint names (RFC 5280 §5.2.5)."""
        name = crl_scope_name(authority, shard)
        return [f"{base}/crl/{name}.crl" for base in (self.base, *self.previous)]

    def delta_crl(self, authority: str, shard: int | None = None) -> str:
        return f"{self.base}/crl/{crl_scope_name(authority, shard)}-delta.crl"

    def ocsp(self, authority: str) -> str:
        return f"{self.base}/ocsp/{authority}"

    def ca_issuers(self, authority: str) -> str:
        # RFC 5280 §4.2.2.1: caIssuers over HTTP serves a DER certificate (.crt / .cer).
        return f"{self.base}/ca/{authority}.crt"
