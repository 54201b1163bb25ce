"""Public URLs that go into every certificate (DESIGN.md §4): CRL, delta CRL, OCSP, CA issuers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublicURLs:
    """URLs built from the operator's public base URL (plain HTTP, as relying parties expect)."""

    base: str

    def __post_init__(self) -> None:
        if not self.base.startswith(("http://", "https://")):
            raise ValueError(f"public base URL must be http(s): {self.base!r}")
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def crl(self, authority: str) -> str:
        return f"{self.base}/crl/{authority}.crl"

    def delta_crl(self, authority: str) -> str:
        return f"{self.base}/crl/{authority}-delta.crl"

    def ocsp(self, authority: str) -> str:
        return f"{self.base}/ocsp/{authority}"

    def ca_issuers(self, authority: str) -> str:
        # RFC 5280 §4.2.2.1: caIssuers over HTTP serves a DER certificate (.crt / .cer).
        return f"{self.base}/ca/{authority}.crt"
