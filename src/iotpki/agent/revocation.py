"""Revocation status from the issuer's CRL (RFC 5280 §6.3), fetched over HTTP from the
certificate's CRL distribution point and cached until the CRL's nextUpdate.

Used by devices and services for the peer check (`iotpki.wire.peer`), and by the server
for previous-stage identities issued by a supplier that runs its own PKI. Imports only
`iotpki.wire`, so a device can install it. Fails closed: a CRL that cannot be fetched,
is not signed by the issuer, or is stale gives `unknown`.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509

from iotpki.wire.peer import RevocationStatus, crl_status

Fetch = Callable[[str], bytes]
MAX_CRL_BYTES = 64 * 1024 * 1024
DEFAULT_LIFETIME = timedelta(hours=1)  # for a CRL without nextUpdate


def fetch_http(url: str, timeout: float = 5.0) -> bytes:
    if not url.startswith("http://"):
        raise ValueError(f"only http:// CRL locations are fetched, not {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read(MAX_CRL_BYTES + 1))


def crl_locations(certificate: x509.Certificate) -> list[str]:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier)
            and name.value.startswith("http://")]


class CRLCache:
    """A `RevocationSource`: status from the issuer's CRL, cached until nextUpdate."""

    def __init__(self, fetch: Fetch = fetch_http,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._fetch = fetch
        self._now = now
        self._cache: dict[str, tuple[x509.CertificateRevocationList, datetime]] = {}
        self._lock = threading.Lock()

    def __call__(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        for url in crl_locations(certificate):
            crl = self._crl(url)
            if crl is None:
                continue
            status = crl_status(crl, certificate, issuer, self._now())
            if status is not RevocationStatus.UNKNOWN:
                return status
        return RevocationStatus.UNKNOWN

    def _crl(self, url: str) -> x509.CertificateRevocationList | None:
        now = self._now()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            data = self._fetch(url)
            if len(data) > MAX_CRL_BYTES:
                return None
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_crl(data))
        except (OSError, ValueError):
            return None
        expires = crl.next_update_utc or now + DEFAULT_LIFETIME
        with self._lock:
            self._cache[url] = (crl, expires)
        return crl
