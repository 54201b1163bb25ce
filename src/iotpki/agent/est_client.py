"""EST client (RFC 7030, RFC 8951) on the shared codecs of `iotpki.wire.est`.

- §4.1.1: cacerts is fetched over TLS; before the device has any anchor (bootstrap) the
  server is not authenticated by TLS, and the answer is accepted only because its root is
  pinned by fingerprint (the "out-of-band" check of §4.1.1). After that the server is
  authenticated with the accepted anchors.
- §4.2.1: simpleenroll with HTTP Basic (registration id, one-time secret; §3.2.3) or with
  the previous-stage certificate as TLS client certificate (§3.3.2).
- §4.2.2: simplereenroll with the current certificate as TLS client certificate.
- §4.2.3: 200 certs-only; 202 + Retry-After (pending); 4xx `<reason>: <explanation>`.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from datetime import datetime

from cryptography import x509

from iotpki.agent.credentials import Credentials, build_csr, sans_of
from iotpki.agent.errors import PendingError, RefusedError, TransportError, UntrustedAnswerError
from iotpki.agent.keystore import Identity, KeyStoreError, PendingKey
from iotpki.agent.transport import Answer, HTTPTransport, Transport
from iotpki.agent.trust import Trust
from iotpki.wire.errors import DecodeError
from iotpki.wire.est import CERTS_ONLY, PKCS10, decode_certs_only, encode_base64_body

Clock = Callable[[], datetime]


class ESTClient:
    def __init__(self, base_url: str, trust: Trust, clock: Clock, label: str = "",
                 transport: Transport | None = None) -> None:
        self._base = base_url.rstrip("/") + "/.well-known/est" + (f"/{label}" if label else "")
        self._trust = trust
        self._clock = clock
        self._transport = transport or HTTPTransport()
        self._contexts: dict[tuple[str, ...], ssl.SSLContext] = {}

    # -- operations -------------------------------------------------------------------------

    def ca_certs(self) -> list[x509.Certificate]:
        """§4.1: the CA certificates, with the pinned root accepted as anchor."""
        bootstrap = not self._trust.anchors
        tls = self._bootstrap_context() if bootstrap else self._context()
        answer = self._transport.request("GET", f"{self._base}/cacerts", tls=tls)
        certificates = self._certificates(answer)
        self._trust.accept(certificates)
        if not self._trust.anchors:
            raise UntrustedAnswerError("cacerts holds no root with a pinned fingerprint")
        issuing = [c for c in certificates if c not in self._trust.anchors]
        if issuing:  # the whole answer must chain to the accepted root
            self._trust.path(issuing[0], issuing[1:], self._clock())
        return certificates

    def enroll(self, pending: PendingKey, subject: x509.Name, credentials: Credentials,
               sans: list[x509.GeneralName] | None = None) -> list[x509.Certificate]:
        ca = self.ca_certs()
        csr = build_csr(pending.key, subject, sans or ())
        headers = {"Content-Type": PKCS10, "Content-Transfer-Encoding": "base64"}
        if credentials.secret is not None and credentials.registration_id is not None:
            token = f"{credentials.registration_id}:{credentials.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
            tls = self._context()
        elif credentials.previous_chain_file and credentials.previous_key_file:
            tls = self._context(credentials.previous_chain_file, credentials.previous_key_file)
        else:
            raise RefusedError("no-credentials", "EST enrollment needs a one-time secret or a "
                                                 "previous-stage certificate and key file")
        answer = self._transport.request("POST", f"{self._base}/simpleenroll",
                                         encode_base64_body(csr), headers, tls)
        return self._issued(answer, ca)

    def renew(self, identity: Identity, pending: PendingKey) -> list[x509.Certificate]:
        if identity.key_file is None or identity.chain_file is None:
            raise KeyStoreError("EST renewal authenticates with TLS and needs the key in a file; "
                                "use CMP with a token key")
        ca = self.ca_certs()
        current = identity.certificate
        csr = build_csr(pending.key, current.subject, sans_of(current))
        answer = self._transport.request(
            "POST", f"{self._base}/simplereenroll", encode_base64_body(csr),
            {"Content-Type": PKCS10, "Content-Transfer-Encoding": "base64"},
            self._context(str(identity.chain_file), str(identity.key_file)))
        return self._issued(answer, ca)

    # -- answers ----------------------------------------------------------------------------

    def _issued(self, answer: Answer, ca: list[x509.Certificate]) -> list[x509.Certificate]:
        certificates = self._certificates(answer)
        leaf = certificates[0]
        path = self._trust.path(leaf, [*certificates[1:], *ca], self._clock())
        return path[:-1]  # leaf and intermediates; the anchor is kept apart

    @staticmethod
    def _certificates(answer: Answer) -> list[x509.Certificate]:
        if answer.status == 202:
            raise PendingError(float(answer.headers.get("retry-after", "60") or 60))
        if 400 <= answer.status < 500:
            text = answer.body.decode("utf-8", "replace").strip()
            reason, _, detail = text.partition(":")
            raise RefusedError(f"http-{answer.status} {reason.strip()}", detail.strip() or text)
        if answer.status != 200:
            raise TransportError(f"EST server answered HTTP {answer.status}")
        if not answer.content_type.lower().startswith(CERTS_ONLY.split(";")[0]):
            raise UntrustedAnswerError(f"unexpected content type {answer.content_type!r}")
        try:
            certificates = decode_certs_only(answer.body)
        except DecodeError as exc:
            raise UntrustedAnswerError(str(exc)) from exc
        if not certificates:
            raise UntrustedAnswerError("certs-only answer without certificates")
        return certificates

    # -- TLS --------------------------------------------------------------------------------

    def _context(self, *client: str) -> ssl.SSLContext:
        key = (self._trust.pem().decode(), *client)
        context = self._contexts.get(key)
        if context is None:
            context = ssl.create_default_context(cadata=key[0])
            if client:
                context.load_cert_chain(client[0], client[1])
            self._contexts[key] = context
        return context

    @staticmethod
    def _bootstrap_context() -> ssl.SSLContext:
        # RFC 7030 §4.1.1 bootstrap: the TLS server is not authenticated; the answer is
        # trusted only through the pinned fingerprint of its root.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context


