"""What the fleet simulator asks a deployment's REST API (docs/api.md): which CA, domain
and root to use, and the devices' registrations. Over the agent's stdlib HTTP client, with
an API key (`Authorization: Bearer`), so the simulator drives any deployment it can reach.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from iotpki.agent.transport import HTTPTransport
from iotpki.agent.trust import certificate_fingerprint

API = "/api/v1"
BATCH = 500  # registrations per request (the API takes up to 1,000)


class FleetSetupError(Exception):
    """The deployment cannot be driven as asked; the message says what to give."""


@dataclass(frozen=True)
class Target:
    """What the devices enroll with."""

    authority: str
    domain: str | None
    anchor: str  # SHA-256 fingerprint of the root the devices pin
    public_url: str | None  # the server's public base URL, from the CA's certificate


class FleetAPI:
    def __init__(self, url: str, api_key: str, tls_ca: Path | None = None,
                 transport: HTTPTransport | None = None) -> None:
        self.base = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._tls = (ssl.create_default_context(cafile=str(tls_ca)) if tls_ca is not None
                     else ssl.create_default_context())
        self._transport = transport or HTTPTransport()

    def close(self) -> None:
        self._transport.close()

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: object) -> Any:
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        return self._call("POST", path, json.dumps(body).encode(), headers)

    def _call(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> Any:
        answer = self._transport.request(method, f"{self.base}{API}{path}", body,
                                         {**self._headers, **(headers or {})},
                                         tls=self._tls if self.base.startswith("https:") else None)
        try:
            document = json.loads(answer.body) if answer.body else None
        except ValueError:
            document = None
        if answer.status >= 400:
            detail = document.get("detail") if isinstance(document, dict) else None
            raise FleetSetupError(f"{method} {API}{path}: HTTP {answer.status}"
                                  + (f": {detail}" if detail else ""))
        return document

    def target(self, authority: str | None, domain: str | None) -> Target:
        """The CA (the organization's only issuing CA unless named), the domain (its only
        operational domain unless named; none if it has none) and the root to pin."""
        if authority is None:
            issuing = [a["label"] for a in self.get("/authorities?limit=1000")["items"]
                       if a["can_issue"] and a["parent"] is not None]
            if len(issuing) != 1:
                raise FleetSetupError(f"the organization has {len(issuing)} issuing CAs "
                                      f"({', '.join(issuing) or 'none'}): give --ca")
            authority = issuing[0]
        found = self.get(f"/authorities/{authority}")
        chain = x509.load_pem_x509_certificates(found["certificate_pem"].encode())
        if domain is None:
            domains = [d["name"] for d in self.get("/domains?limit=1000")["items"]]
            if len(domains) > 1:
                raise FleetSetupError(f"the organization owns {len(domains)} domains "
                                      f"({', '.join(domains)}): give --domain")
            domain = domains[0] if domains else None
        return Target(authority, domain, certificate_fingerprint(chain[-1]),
                      public_base(chain[0], found["parent"]))

    def register(self, target: Target, profile: str, names: Sequence[str]) -> list[tuple[str, str]]:
        """One one-time-secret registration per name: (registration id, secret)."""
        made = []
        for start in range(0, len(names), BATCH):
            batch = [{"authority": target.authority, "profile": profile,
                      "method": "one-time-secret", "subject": f"CN={name}",
                      **({"domain": target.domain} if target.domain else {})}
                     for name in names[start:start + BATCH]]
            created = self.post("/registrations/bulk", {"registrations": batch})["items"]
            made += [(item["id"], item["secret"]) for item in created]
        return made


def public_base(certificate: x509.Certificate, parent: str | None) -> str | None:
    """The public base URL a CA certificate's caIssuers pointer names
    (`<base>/ca/<parent>.crt`, RFC 5280 §4.2.2.1), or None (a root has none)."""
    if parent is None:
        return None
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    suffix = f"/ca/{parent}.crt"
    for description in access:
        url = str(description.access_location.value)
        if (description.access_method == AuthorityInformationAccessOID.CA_ISSUERS
                and url.endswith(suffix) and urlsplit(url).scheme in ("http", "https")):
            return url.removesuffix(suffix)
    return None
