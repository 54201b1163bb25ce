"""The device's ACME client (RFC 8555) on the shared codecs of `iotpki.wire.acme`: an account
(with External Account Binding), a `permanent-identifier` order proven by device-attest-01
with the previous-stage key (draft-ietf-acme-device-attest, format `previous-stage`),
finalize with the new key's CSR, the PEM chain, and the renewal window the server suggests
(RFC 9773 renewalInfo).

Every answer that is not what the RFC promises raises: a problem document is
`RefusedError(<ACME error type>, detail)`, a server fault or no answer `TransportError`.
A `badNonce` answer is retried once with the nonce it carries (RFC 8555 §6.5).
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.agent.errors import RefusedError, TransportError
from iotpki.agent.transport import Answer, HTTPTransport, Transport
from iotpki.wire.acme.attestation import sign_previous_stage
from iotpki.wire.acme.jws import PrivateKey, jwk_of, sign_jws, sign_mac_jws, thumbprint
from iotpki.wire.acme.messages import ERROR_PREFIX, ari_certificate_id, key_authorization

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


class ACMEDeviceClient:
    def __init__(self, directory_url: str, account_key: PrivateKey,
                 tls: ssl.SSLContext | None = None, transport: Transport | None = None) -> None:
        self._transport = transport or HTTPTransport()
        self._tls = tls
        self._key = account_key
        self._directory = _json(self._checked(self._transport.request(
            "GET", directory_url, tls=tls)))
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
        self.account_url = answer.headers["location"]
        return self.account_url

    # -- device-attest-01 ---------------------------------------------------------------------

    def enroll_attested(self, identifier: str, previous_key: Any,
                        previous_chain: Sequence[x509.Certificate],
                        csr: bytes) -> list[x509.Certificate]:
        """Order `identifier` (permanent-identifier), prove it with the previous-stage key,
        finalize with `csr` (DER); the issued chain, leaf first."""
        order_answer = self._post(self._directory["newOrder"], {"identifiers": [
            {"type": "permanent-identifier", "value": identifier}]})
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
                previous_key, [c.public_bytes(Encoding.DER) for c in previous_chain],
                key_authorization(challenge["token"], thumbprint(self._key.public_key())))
            result = _json(self._post(challenge["url"], {"attObj": _b64(att_obj)}))
            if result["status"] != "valid":
                error = result.get("error") or {}
                raise RefusedError(str(error.get("type", "")).removeprefix(ERROR_PREFIX),
                                   str(error.get("detail", "device attestation refused")))
        final = _json(self._post(order["finalize"], {"csr": _b64(csr)}))
        if final.get("status") != "valid" or "certificate" not in final:
            raise TransportError(f"the order is {final.get('status')}, not valid")
        pem = self._post(final["certificate"], None).body
        return x509.load_pem_x509_certificates(pem)

    # -- RFC 9773 ----------------------------------------------------------------------------

    def renewal_window(self, certificate: x509.Certificate) -> tuple[datetime, datetime]:
        url = f"{self._directory['renewalInfo']}/{ari_certificate_id(certificate)}"
        window = _json(self._checked(self._transport.request(
            "GET", url, tls=self._tls)))["suggestedWindow"]
        return _time(window["start"]), _time(window["end"])

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
