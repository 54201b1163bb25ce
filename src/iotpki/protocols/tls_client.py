"""The TLS client certificate of a request, from the ASGI TLS extension our HTTPS listener
fills in (`iotpki.https_server.tls_extension`: `client_cert_chain`, PEM strings, the leaf
first). Shared by the adapters that authenticate principals by certificate (REST API, web
console, EST)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509


def client_certificate(scope: Mapping[str, Any]) -> x509.Certificate | None:
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    return x509.load_pem_x509_certificate(str(chain[0]).encode()) if chain else None
