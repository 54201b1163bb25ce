"""The HTTPS certificate is replaced as soon as it is revoked (issue 15 item 7).

`iotpki serve` issues its own HTTPS certificate (`https_server.prepare_tls`). It is an
infrastructure certificate: no tenant revokes it, but the operator can, and a server
presenting a revoked certificate would be refused by every client that checks. So:

- `CertificateGuard` (one thread in the HTTPS listener's parent process) looks up the
  served certificate in the store every few seconds; once it is revoked or on hold it
  issues a new one into the same files (key first, then certificate, each replaced
  atomically), audits `service.certificate.replace` and logs a warning.
- `watch_certificate` (in each worker, on its event loop) reloads the TLS context when the
  certificate file changes: new connections get the new certificate at once. The reload
  runs on the loop thread, between handshakes, never beside one.

A certificate given with `--tls-cert` is the operator's own business and is not guarded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.app import PKI
from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.errors import NotFoundError
from iotpki.settings import TLSFiles

log = logging.getLogger(__name__)
ACTOR = "iotpki serve"


def served_status(pki: PKI, certificate: Path) -> tuple[x509.Certificate, CertificateStatus | None]:
    """The leaf in the file and its status here (None: not issued here)."""
    leaf = x509.load_pem_x509_certificate(certificate.read_bytes())
    try:
        record = pki.certificates.get_by_fingerprint(leaf.fingerprint(hashes.SHA256()).hex())
    except NotFoundError:
        return leaf, None
    return leaf, record.status


class CertificateGuard:
    """Replaces the served certificate once the store says it is revoked or on hold."""

    def __init__(self, pki: PKI, certificate: Path,
                 issue: Callable[[PKI, list[str]], None], interval: float) -> None:
        self._pki = pki
        self._certificate = certificate
        self._issue = issue  # (pki, names) → new key and certificate in the files
        self._interval = interval
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="tls-guard", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:  # the guard must outlive a database hiccup
                log.exception("checking the HTTPS certificate failed; trying again")

    def check(self) -> bool:
        """Replace the certificate if it was revoked; True if it was."""
        leaf, status = served_status(self._pki, self._certificate)
        if status is None or status is CertificateStatus.GOOD:
            return False
        self._issue(self._pki, names_of(leaf))
        new, _ = served_status(self._pki, self._certificate)
        old_fp, new_fp = (c.fingerprint(hashes.SHA256()).hex() for c in (leaf, new))
        with self._pki.database.unit_of_work() as uow:
            append_audit(uow.audit, self._pki.clock.now(), AuditRecord(
                "service.certificate.replace", "success", ACTOR, "https",
                {"revoked": old_fp, "status": status.value, "replacement": new_fp}))
            uow.commit()
        log.warning("the HTTPS certificate %s is %s: replaced by %s", old_fp, status.value,
                    new_fp)
        return True


def names_of(leaf: x509.Certificate) -> list[str]:
    """The host names and addresses of a server certificate, to issue its successor."""
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in sans if isinstance(n, x509.DNSName | x509.IPAddress)]


def watch_certificate(context: ssl.SSLContext, files: TLSFiles, interval: float) -> None:
    """Reload `context` when the certificate file changes, looking every `interval` seconds
    (at most 1) (called where uvicorn builds the context, inside the worker's event loop;
    without a running loop, nothing is watched)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    certificate, key = files.certificate, files.key
    seen = [_mtime(certificate)]

    def check() -> None:
        current = _mtime(certificate)
        if current != seen[0]:
            try:
                context.load_cert_chain(certificate, key)
                seen[0] = current
                log.warning("HTTPS certificate reloaded from %s", certificate)
            except (ssl.SSLError, OSError, ValueError):  # half-written: next time
                log.info("HTTPS certificate not reloadable yet; retrying")
        loop.call_later(min(interval, 1.0), check)

    loop.call_later(min(interval, 1.0), check)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0
