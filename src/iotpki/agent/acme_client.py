"""The device's ACME client (RFC 8555) on the shared codecs of `iotpki.wire.acme`: an account
(with External Account Binding), a `permanent-identifier` order proven by device-attest-01
with the previous-stage key (draft-ietf-acme-device-attest, format `previous-stage`),
finalize with the new key's CSR, the PEM chain, and the renewal window the server suggests
(RFC 9773 renewalInfo). A renewal orders the same identifier with `replaces` (RFC 9773 §5)
and attests with the current certificate's key (format `current-certificate`).

`ACMEEnrollment` is the agent's `EnrollmentClient` over it (`protocol = "acme"`): the
account key is kept in `<directory>/acme-account.pem`; the account is found again by its
key at every start (RFC 8555 §7.3.1).

Every answer that is not what the RFC promises raises: a problem document is
`RefusedError(<ACME error type>, detail)`, a server fault or no answer `TransportError`.
A `badNonce` answer is retried once with the nonce it carries (RFC 8555 §6.5).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.agent.credentials import Credentials, build_csr, sans_of
from iotpki.agent.errors import RefusedError, TransportError, UntrustedAnswerError
from iotpki.agent.keystore import Identity, PendingKey, write_atomic
from iotpki.agent.transport import Answer, HTTPTransport, Transport
from iotpki.agent.trust import Trust
from iotpki.wire.acme.attestation import (
    CurrentCertificateFormat,
    PreviousStageFormat,
    permanent_identifier,
    sign_previous_stage,
)
from iotpki.wire.acme.jws import PrivateKey, jwk_of, sign_jws, sign_mac_jws, thumbprint
from iotpki.wire.acme.messages import ERROR_PREFIX, ari_certificate_id, key_authorization
from iotpki.wire.keys import generate_private_key

ACCOUNT_KEY = "acme-account.pem"
# RFC 9773 §4.3: Retry-After is honoured within these bounds (a server asking for more often
# than a minute, or less often than a day, is not followed blindly).
RETRY_MIN, RETRY_MAX, RETRY_DEFAULT = 60.0, 86400.0, 21600.0

JOSE = {"Content-Type": "application/jose+json"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(answer: Answer) -> dict[str, Any]:
    try:
        value = json.loads(answer.body)
    except ValueError as exc:
        raise TransportError(f"answer is not JSON (HTTP {answer.status})") from exc
    if not isinstance(value, dict):
        raise TransportError("answer is not a JSON object")
    return value


@dataclass(frozen=True)
class SuggestedWindow:
    """RFC 9773 §4.2 `suggestedWindow`, and when to ask again (§4.3 Retry-After, seconds)."""

    start: datetime
    end: datetime
    retry_after: float


class ACMEDeviceClient:
    def __init__(self, directory_url: str, account_key: PrivateKey,
                 tls: ssl.SSLContext | None = None, transport: Transport | None = None) -> None:
        self._transport = transport or HTTPTransport()
        self._tls = tls
        self._key = account_key
        self._directory = _json(self._checked(self._transport.request(
            "GET", directory_url, tls=tls)))
        missing = {"newNonce", "newAccount", "newOrder"} - set(self._directory)
        if missing:
            raise TransportError(f"the ACME directory lacks {', '.join(sorted(missing))}")
        self._nonce: str | None = None
        self.account_url: str | None = None

    # -- RFC 8555 §7.3 ------------------------------------------------------------------------

    def register(self, eab: tuple[str, bytes] | None = None,
                 contact: Sequence[str] = ()) -> str:
        url = self._directory["newAccount"]
        payload: dict[str, Any] = {"termsOfServiceAgreed": True, "contact": list(contact)}
        if eab is not None:
            payload["externalAccountBinding"] = sign_mac_jws(
                eab[1], eab[0], jwk_of(self._key.public_key()), url)
        answer = self._post(url, payload, use_jwk=True)
        location = answer.headers.get("location")
        if not location:
            raise TransportError("newAccount answered no Location (RFC 8555 §7.3)")
        self.account_url = location
        return location

    # -- device-attest-01 ---------------------------------------------------------------------

    def enroll_attested(self, identifier: str, previous_key: Any,
                        previous_chain: Sequence[x509.Certificate],
                        csr: bytes, fmt: str = PreviousStageFormat.name,
                        replaces: str | None = None) -> list[x509.Certificate]:
        """Order `identifier` (permanent-identifier), prove it with the previous-stage key
        (or, `fmt="current-certificate"`, the current certificate's key), finalize with `csr`
        (DER); the issued chain, leaf first. `replaces`: the RFC 9773 id of the certificate
        this order renews (§5)."""
        return self.download(self.order_attested(identifier, previous_key, previous_chain,
                                                 csr, fmt, replaces))[0]

    def order_attested(self, identifier: str, key: Any, chain: Sequence[x509.Certificate],
                       csr: bytes, fmt: str = PreviousStageFormat.name,
                       replaces: str | None = None) -> str:
        """The order up to finalize; the certificate URL. An answer without the members
        RFC 8555 §7.1 gives it is a `TransportError` (never a bare KeyError in the loop)."""
        try:
            return self._order_attested(identifier, key, chain, csr, fmt, replaces)
        except (KeyError, TypeError, AttributeError) as exc:
            raise TransportError(f"unexpected ACME answer: {exc!r}") from exc

    def _order_attested(self, identifier: str, key: Any, chain: Sequence[x509.Certificate],
                        csr: bytes, fmt: str, replaces: str | None) -> str:
        request: dict[str, Any] = {"identifiers": [
            {"type": "permanent-identifier", "value": identifier}]}
        if replaces is not None:
            request["replaces"] = replaces
        order_answer = self._post(self._directory["newOrder"], request)
        order = _json(order_answer)
        for authz_url in order["authorizations"]:
            authz = _json(self._post(authz_url, None))
            challenge = next((c for c in authz["challenges"]
                              if c["type"] == "device-attest-01"), None)
            if challenge is None:
                raise RefusedError("unsupportedIdentifier", "no device-attest-01 offered")
            if challenge["status"] == "valid":
                continue
            att_obj = sign_previous_stage(
                key, [c.public_bytes(Encoding.DER) for c in chain],
                key_authorization(challenge["token"], thumbprint(self._key.public_key())), fmt)
            result = _json(self._post(challenge["url"], {"attObj": _b64(att_obj)}))
            if result["status"] != "valid":
                error = result.get("error") or {}
                raise RefusedError(str(error.get("type", "")).removeprefix(ERROR_PREFIX),
                                   str(error.get("detail", "device attestation refused")))
        final = _json(self._post(order["finalize"], {"csr": _b64(csr)}))
        if final.get("status") != "valid" or "certificate" not in final:
            raise TransportError(f"the order is {final.get('status')}, not valid")
        return str(final["certificate"])

    def download(self, url: str) -> list[list[x509.Certificate]]:
        """§7.4.2: the PEM chain at `url`, then its alternates (Link rel="alternate")."""
        chains: list[list[x509.Certificate]] = []
        alternates = [url]
        while alternates and len(chains) < 4:
            answer = self._post(alternates.pop(0), None)
            try:
                chains.append(x509.load_pem_x509_certificates(answer.body))
            except ValueError as exc:
                raise UntrustedAnswerError(f"the certificate is not a PEM chain: {exc}") from exc
            if len(chains) == 1:
                alternates += re.findall(r'<([^>]+)>\s*;\s*rel="?alternate"?',
                                         answer.headers.get("link", ""))
        return chains

    # -- RFC 9773 ----------------------------------------------------------------------------

    def renewal_window(self, certificate: x509.Certificate) -> tuple[datetime, datetime]:
        window = self.renewal_info(certificate)
        if window is None:
            raise RefusedError("unsupported", "the server has no renewalInfo (RFC 9773)")
        return window.start, window.end

    def renewal_info(self, certificate: x509.Certificate) -> SuggestedWindow | None:
        """§4.2 the suggested window and §4.3 when to ask again; None when the server has no
        renewalInfo resource or does not know the certificate (404)."""
        base = self._directory.get("renewalInfo")
        if not isinstance(base, str):
            return None
        answer = self._transport.request("GET", f"{base}/{ari_certificate_id(certificate)}",
                                         tls=self._tls)
        if answer.status == 404:
            return None
        try:
            window = _json(self._checked(answer))["suggestedWindow"]
            start, end = _time(window["start"]), _time(window["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TransportError(f"renewalInfo answer is not a suggestedWindow: {exc}") from exc
        if end <= start:  # §4.2: the end must be after the start
            raise TransportError("renewalInfo suggestedWindow ends before it starts")
        return SuggestedWindow(start, end, _retry_after(answer.headers.get("retry-after")))

    # -- transport -----------------------------------------------------------------------------

    def _post(self, url: str, payload: dict[str, Any] | None,
              use_jwk: bool = False) -> Answer:
        for attempt in (1, 2):
            nonce = self._nonce or self._fresh_nonce()
            self._nonce = None
            body = sign_jws(self._key, payload, url, nonce,
                            kid=None if use_jwk else self.account_url)
            answer = self._transport.request("POST", url, json.dumps(body).encode(), JOSE,
                                             tls=self._tls)
            self._nonce = answer.headers.get("replay-nonce")
            if attempt == 1 and answer.status == 400 and \
                    _problem_type(answer) == "badNonce":
                continue  # §6.5: retry with the nonce the error carried
            return self._checked(answer)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fresh_nonce(self) -> str:
        answer = self._transport.request("HEAD", self._directory["newNonce"], tls=self._tls)
        nonce = answer.headers.get("replay-nonce")
        if not nonce:
            raise TransportError("newNonce answered no Replay-Nonce")
        return nonce

    @staticmethod
    def _checked(answer: Answer) -> Answer:
        if answer.status >= 500:
            raise TransportError(f"ACME server fault (HTTP {answer.status})")
        if answer.status >= 400:
            kind = _problem_type(answer) or f"http-{answer.status}"
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = str(json.loads(answer.body).get("detail", ""))
            raise RefusedError(kind, detail)
        return answer


def _problem_type(answer: Answer) -> str | None:
    try:
        kind = json.loads(answer.body).get("type", "")
    except (ValueError, AttributeError):
        return None
    return str(kind).removeprefix(ERROR_PREFIX) if kind else None


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _retry_after(value: str | None) -> float:
    """RFC 9773 §4.3 / RFC 9110 §10.2.3: seconds or an HTTP date; bounded."""
    seconds = RETRY_DEFAULT
    if value:
        try:
            seconds = float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime
            with contextlib.suppress(TypeError, ValueError):
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    return min(RETRY_MAX, max(RETRY_MIN, seconds))


class ACMEEnrollment:
    """The agent's `EnrollmentClient` over ACME: enrollment with device-attest-01 and the
    previous-stage identity, renewal with the current certificate (`replaces` it), the
    issued chain validated to a pinned root before it is installed, and the server's
    renewal window (`renewal_info`) for the scheduler.

    TLS: the server is authenticated with the accepted anchors; before the first certificate
    the device has none (as at the EST bootstrap, RFC 7030 §4.1.1) and the first contact is
    not authenticated by TLS: what it brings is believed only through the pinned root (the
    issued chain must validate to it). The attestation is bound to the account key and the
    EAB MAC to it too, so neither can be used by another party."""

    def __init__(self, directory_url: str, trust: Trust, clock: Callable[[], datetime],
                 state_directory: Path, transport: Transport | None = None,
                 eab: Callable[[], tuple[str, bytes] | None] = lambda: None,
                 key_type: str = "ec-p256") -> None:
        self._url = directory_url
        self._trust = trust
        self._clock = clock
        self._state_directory = state_directory
        self._transport = transport or HTTPTransport()
        self._eab = eab
        self._key_type = key_type
        self._client: ACMEDeviceClient | None = None
        self._anchors_at_connect: int = -1

    # -- EnrollmentClient ------------------------------------------------------------------

    def enroll(self, pending: PendingKey, subject: x509.Name, credentials: Credentials,
               sans: list[x509.GeneralName] | None = None) -> list[x509.Certificate]:
        if credentials.previous_key is None or not credentials.previous_chain:
            raise RefusedError("no-credentials", "ACME enrollment (device-attest-01) needs the "
                                                 "previous-stage certificate and key")
        identifier = permanent_identifier(credentials.previous_chain[0])
        if identifier is None:
            raise RefusedError("no-credentials", "the previous-stage certificate names no "
                                                 "serialNumber or CN (permanent-identifier)")
        client = self._connected()
        url = client.order_attested(identifier, credentials.previous_key,
                                    credentials.previous_chain,
                                    build_csr(pending.key, subject, sans or ()))
        return self._issued(client.download(url))

    def renew(self, identity: Identity, pending: PendingKey) -> list[x509.Certificate]:
        current = identity.certificate
        identifier = permanent_identifier(current)
        if identifier is None:
            raise RefusedError("no-identity", "the current certificate names no serialNumber "
                                              "or CN (permanent-identifier)")
        client = self._connected()
        csr = build_csr(pending.key, current.subject, sans_of(current))
        try:
            url = client.order_attested(identifier, identity.key, identity.chain, csr,
                                        CurrentCertificateFormat.name,
                                        ari_certificate_id(current))
        except RefusedError as refused:
            # RFC 9773 §5: the server may refuse `replaces` for a certificate another account
            # (or another protocol) obtained; the renewal is still authorized by the current
            # certificate, so order again without it.
            if refused.reason != "malformed" or "replaces" not in refused.detail:
                raise
            url = client.order_attested(identifier, identity.key, identity.chain, csr,
                                        CurrentCertificateFormat.name)
        return self._issued(client.download(url))

    def renewal_info(self, identity: Identity) -> SuggestedWindow | None:
        return self._connected().renewal_info(identity.certificate)

    # -- internals -------------------------------------------------------------------------

    def _connected(self) -> ACMEDeviceClient:
        """The client with a registered account, made again once anchors are accepted (from
        then on TLS authenticates the server)."""
        if self._client is None or self._anchors_at_connect != len(self._trust.anchors):
            tls = self._tls_context()
            self._anchors_at_connect = len(self._trust.anchors)
            self._client = ACMEDeviceClient(self._url, self._account_key(), tls,
                                            self._transport)
            self._client.register(self._eab())
        return self._client

    def _tls_context(self) -> ssl.SSLContext:
        if self._trust.anchors:
            return ssl.create_default_context(cadata=self._trust.pem().decode())
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def _account_key(self) -> PrivateKey:
        path = self._state_directory / ACCOUNT_KEY
        if path.exists():
            return cast(PrivateKey, serialization.load_pem_private_key(path.read_bytes(), None))
        key = generate_private_key(self._key_type)
        self._state_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), 0o600)
        return cast(PrivateKey, key)

    def _issued(self, chains: list[list[x509.Certificate]]) -> list[x509.Certificate]:
        """The chain to install (leaf and intermediates), validated to a pinned root; roots
        a chain brings (the alternate with the root) are accepted only if pinned."""
        for chain in chains:
            self._trust.accept(chain)
        leaf = chains[0][0]
        intermediates = [c for chain in chains for c in chain[1:]
                         if c not in self._trust.anchors]
        path = self._trust.path(leaf, intermediates, self._clock())
        return path[:-1]
