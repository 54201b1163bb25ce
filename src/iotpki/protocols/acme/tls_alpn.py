"""tls-alpn-01 (RFC 8737): a TLS handshake to the name on the configured port (443) with SNI
the name and ALPN `acme-tls/1` only; the certificate it presents must name exactly that DNS
name (§3) and carry the critical id-pe-acmeIdentifier extension whose value is the SHA-256
of the key authorization as a DER OCTET STRING (§3, §6.1). The certificate is not otherwise
trusted: it is self-made by the client for the challenge.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Callable

from cryptography import x509

from iotpki.protocols.acme.validation import ChallengeFailed, ChallengeInput, ValidationSettings

ACME_TLS_1 = "acme-tls/1"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 §6.1


class TLSALPN01:
    def __init__(self, settings: ValidationSettings, resolve: Callable[[str], str]) -> None:
        self._settings = settings
        self._resolve = resolve

    def __call__(self, challenge: ChallengeInput) -> None:
        name = challenge.identifier.value
        address = self._settings.connect_address or self._resolve(name)
        der = self._handshake(name, address)
        try:
            certificate = x509.load_der_x509_certificate(der)
            names = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
            extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
        except (ValueError, x509.ExtensionNotFound) as exc:
            raise ChallengeFailed("incorrectResponse", f"tls-alpn-01: the certificate of "
                                  f"{name} lacks subjectAltName or acmeIdentifier") from exc
        if list(names) != [x509.DNSName(name)]:
            raise ChallengeFailed("incorrectResponse", f"tls-alpn-01: the certificate must "
                                                       f"name exactly {name}")
        expected = b"\x04\x20" + hashlib.sha256(challenge.key_authorization.encode()).digest()
        value = getattr(extension.value, "value", None)
        if not extension.critical or value != expected:
            raise ChallengeFailed("incorrectResponse", "tls-alpn-01: acmeIdentifier is not "
                                  "the critical digest of the key authorization")

    def _handshake(self, name: str, address: str) -> bytes:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([ACME_TLS_1])
        try:
            with socket.create_connection((address, self._settings.tls_port),
                                          timeout=self._settings.timeout) as raw, \
                    context.wrap_socket(raw, server_hostname=name) as tls:
                protocol = tls.selected_alpn_protocol()
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            raise ChallengeFailed("tls", f"tls-alpn-01: no TLS handshake with {name} port "
                                         f"{self._settings.tls_port}: {exc}") from exc
        if protocol != ACME_TLS_1 or not der:
            raise ChallengeFailed("tls", f"tls-alpn-01: {name} did not negotiate {ACME_TLS_1}")
        return der
