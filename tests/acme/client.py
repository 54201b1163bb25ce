"""A small ACME client for the tests and the benchmark (RFC 8555 §7), written on our
`wire.acme` codec and any httpx client (in process over ASGI, or a real socket).

It is deliberately plain: each call is one request; the caller inspects the answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from iotpki.wire.acme.jws import PrivateKey, jwk_of, sign_jws, sign_mac_jws, thumbprint
from iotpki.wire.acme.messages import key_authorization

JOSE = {"Content-Type": "application/jose+json"}


@dataclass
class ACMEClient:
    http: Any  # httpx.Client or tests.acme.conftest.InProcess
    directory_url: str
    key: PrivateKey
    kid: str | None = None
    nonce: str | None = None
    directory: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = self.http.get(self.directory_url).json()

    def fresh_nonce(self) -> str:
        return self.http.head(self.directory["newNonce"]).headers["Replay-Nonce"]

    def post(self, url: str, payload: Any, *, use_jwk: bool = False, key: PrivateKey | None = None,
             nonce: str | None = None) -> httpx.Response:
        """A signed POST; `payload` None is POST-as-GET."""
        nonce = nonce or self.nonce or self.fresh_nonce()
        self.nonce = None
        kid = None if use_jwk else self.kid
        body = sign_jws(key or self.key, payload, url, nonce, kid=kid)
        answer = self.http.post(url, content=json.dumps(body), headers=JOSE)
        self.nonce = answer.headers.get("Replay-Nonce")
        return answer

    def new_account(self, eab: tuple[str, bytes] | None = None,
                    **payload: Any) -> httpx.Response:
        url = self.directory["newAccount"]
        body: dict[str, Any] = {"termsOfServiceAgreed": True, **payload}
        if eab is not None:
            body["externalAccountBinding"] = sign_mac_jws(
                eab[1], eab[0], jwk_of(self.key.public_key()), url)
        answer = self.post(url, body, use_jwk=True)
        if answer.status_code in (200, 201):
            self.kid = answer.headers["Location"]
        return answer

    def new_order(self, *names: str, kind: str = "dns") -> httpx.Response:
        return self.post(self.directory["newOrder"],
                         {"identifiers": [{"type": kind, "value": n} for n in names]})

    def key_authorization(self, token: str) -> str:
        return key_authorization(token, thumbprint(self.key.public_key()))

    def get(self, url: str) -> httpx.Response:
        return self.post(url, None)

    def challenge(self, order: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
        """The challenges of `kind` of each authorization of the order."""
        found = []
        for authz_url in order["authorizations"]:
            authz = self.get(authz_url).json()
            found.extend(c for c in authz["challenges"] if c["type"] == kind)
        return found


class Responder:
    """An http-01 responder (RFC 8555 §8.3) on a loopback port: token → body."""

    def __init__(self) -> None:
        self.answers: dict[str, bytes] = {}
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.rsplit("/", 1)[-1]
                body = answers.get(token)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
