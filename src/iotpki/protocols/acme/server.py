"""The ACME server (RFC 8555): request authentication and dispatch.

Order of checks for every POST (RFC 8555 §6.2-§6.5), each failure a problem document:
1. the body is a flattened JWS with an allowed algorithm (`malformed`, `badSignatureAlgorithm`);
2. its `url` is the URL the request was sent to (§6.4, `unauthorized`);
3. its nonce is one we issued and nobody used (§6.5, `badNonce`; consumed whatever follows);
4. `jwk` only for newAccount and revokeCert, `kid` (an account URL of this endpoint) for the
   rest (§6.2); the account exists (`accountDoesNotExist`) and is valid (`unauthorized`);
5. the signature verifies with that key.

Every answer to a POST carries a fresh `Replay-Nonce` and the directory as `Link: rel="index"`
(§6.5, §7.1). Every refusal is audited (`acme.request`, outcome `refused`, with the problem
type and the `RefusalReason`). The state machine of orders, authorizations and challenges is
in `orders.py`, accounts in `accounts.py`, certificates (download, revocation, ARI) in
`certificates.py`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError
from iotpki.core.ra.acme import VALID, ACMEAccount
from iotpki.core.ra.acme_state import ACMEState
from iotpki.core.ra.endpoints import Endpoint, Endpoints
from iotpki.protocols.acme.problems import ACMEProblem, NotFound
from iotpki.protocols.acme.resources import Links, directory
from iotpki.wire.acme.jws import (
    JWS,
    SIGNATURE_ALGORITHMS,
    JWSError,
    PublicKey,
    b64url_encode,
    decode_jws,
    public_key_from_jwk,
    thumbprint,
    verify_jws,
)
from iotpki.wire.errors import DecodeError

NONCE_LIFETIME = timedelta(hours=1)
PRUNE_EVERY = timedelta(minutes=5)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ACMERequest:
    method: str  # GET, HEAD, POST
    label: str
    path: tuple[str, ...]  # the segments after the endpoint's base
    url: str  # the URL the client addressed (scheme, host, path; no query)
    base: str  # https://<host>/acme[/<label>]
    body: bytes = b""


@dataclass(frozen=True)
class ACMEAnswer:
    status: int
    body: Any = None  # a JSON value, bytes (raw), or None (empty)
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Signed:
    """A POST whose JWS, nonce, account and signature were checked."""

    jws: JWS
    key: PublicKey
    account: ACMEAccount | None  # None only for newAccount / revokeCert by certificate key
    endpoint: Endpoint
    links: Links
    url: str

    @property
    def actor(self) -> str:
        return f"acme:{self.account.id}" if self.account is not None else "acme:anonymous"

    @property
    def post_as_get(self) -> bool:
        return self.jws.payload == b""

    def owned(self) -> ACMEAccount:
        if self.account is None:  # pragma: no cover - routes of a kid always have one
            raise ACMEProblem("accountDoesNotExist", "no account")
        return self.account


@dataclass
class _Exchange:
    """What one request learned on its way: the next nonce, who signed it."""

    nonce: str | None = None
    actor: str = "acme:anonymous"


Handler = Callable[[Signed, tuple[str, ...]], ACMEAnswer]
JWK_RESOURCES = ("new-account", "revoke-cert")


class ACMEServer:
    def __init__(self, state: ACMEState, endpoints: Endpoints, clock: Clock) -> None:
        self.state = state
        self._endpoints = endpoints
        self._clock = clock
        self._pruned = datetime.min.replace(tzinfo=clock.now().tzinfo)
        self._posts: dict[str, Handler] = {}
        self._gets: dict[str, Callable[[Endpoint, Links, tuple[str, ...]], ACMEAnswer]] = {}

    def on_post(self, resource: str, handler: Handler) -> None:
        self._posts[resource] = handler

    def on_get(self, resource: str,
               handler: Callable[[Endpoint, Links, tuple[str, ...]], ACMEAnswer]) -> None:
        self._gets[resource] = handler

    def endpoint(self, label: str) -> Endpoint:
        """`NotFoundError` for a label no ACME endpoint declares."""
        return self._endpoints.get("acme", label)

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, request: ACMERequest) -> ACMEAnswer:
        links = Links(request.base)
        exchange = _Exchange()
        try:
            endpoint = self._endpoint_or_404(request.label)
            answer = self._route(request, endpoint, links, exchange)
        except ACMEProblem as problem:
            return self.refuse(request, problem, exchange)
        except JWSError as exc:  # a payload a handler read: its own problem type
            return self.refuse(request, _jws_problem(exc), exchange)
        except DecodeError as exc:
            return self.refuse(request, ACMEProblem("malformed", str(exc)), exchange)
        return self._framed(request, answer, exchange)

    def refuse(self, request: ACMERequest, problem: ACMEProblem,
               exchange: _Exchange | None = None) -> ACMEAnswer:
        """Audit a refusal and answer its problem document (with a fresh nonce, §6.5)."""
        exchange = exchange or _Exchange()
        self._audit_problem(request, problem, exchange.actor)
        answer = ACMEAnswer(problem.status, problem.document(), "application/problem+json")
        return self._framed(request, answer, exchange)

    def _framed(self, request: ACMERequest, answer: ACMEAnswer,
                exchange: _Exchange) -> ACMEAnswer:
        if request.method == "POST" or request.path == ("new-nonce",) or answer.status >= 400:
            answer.headers.setdefault("Replay-Nonce", exchange.nonce or self.new_nonce())
        index = f'<{Links(request.base).directory}>;rel="index"'
        link = answer.headers.get("Link")
        answer.headers["Link"] = f"{link}, {index}" if link else index
        answer.headers.setdefault("Cache-Control", "no-store")
        return answer

    def _endpoint_or_404(self, label: str) -> Endpoint:
        try:
            return self.endpoint(label)
        except NotFoundError as exc:
            raise NotFound(f"no ACME endpoint labelled {label!r}") from exc

    def _route(self, request: ACMERequest, endpoint: Endpoint, links: Links,
               exchange: _Exchange) -> ACMEAnswer:
        if not request.path:
            raise NotFound("no such resource")
        resource, rest = request.path[0], request.path[1:]
        if request.method in ("GET", "HEAD"):
            return self._get(endpoint, links, resource, rest, request.method)
        handler = self._posts.get(resource)
        if handler is None or (resource != "new-nonce" and request.method != "POST"):
            raise NotFound("no such resource")
        signed = self._authenticate(request, endpoint, links, resource, exchange)
        return handler(signed, rest)

    def _get(self, endpoint: Endpoint, links: Links, resource: str, rest: tuple[str, ...],
             method: str) -> ACMEAnswer:
        if resource == "directory" and not rest:
            return ACMEAnswer(200, directory(links, endpoint))
        if resource == "new-nonce" and not rest:
            # §7.2: 200 to HEAD, 204 to GET.
            return ACMEAnswer(200 if method == "HEAD" else 204)
        handler = self._gets.get(resource)
        if handler is None:
            raise ACMEProblem("malformed", "use POST-as-GET for this resource (RFC 8555 §6.3)",
                              status=405)
        return handler(endpoint, links, rest)

    # -- nonces (§6.5, §7.2) ---------------------------------------------------------------------

    def new_nonce(self) -> str:
        nonce = b64url_encode(secrets.token_bytes(16))
        now = self._clock.now()
        prune = now - self._pruned > PRUNE_EVERY
        self.state.add_nonce(nonce, now - NONCE_LIFETIME if prune else None)
        if prune:
            self._pruned = now
        return nonce

    def _swap_nonce(self, used: str | None) -> tuple[bool, str]:
        """Consume `used` and issue the next nonce, in one transaction."""
        fresh = b64url_encode(secrets.token_bytes(16))
        accepted = self.state.swap_nonce(used, fresh, self._clock.now() - NONCE_LIFETIME)
        return accepted, fresh

    # -- authentication (§6.2-§6.4) --------------------------------------------------------------

    def _authenticate(self, request: ACMERequest, endpoint: Endpoint, links: Links,
                      resource: str, exchange: _Exchange) -> Signed:
        try:
            jws = decode_jws(request.body)
        except JWSError as exc:
            raise _jws_problem(exc) from exc
        accepted, fresh = self._swap_nonce(jws.nonce)
        exchange.nonce = fresh
        if not accepted:
            raise ACMEProblem("badNonce", "the nonce is unknown, used or expired (RFC 8555 §6.5)")
        if jws.url != request.url:
            raise ACMEProblem("unauthorized", f"the JWS url {jws.url!r} is not the URL the "
                                              "request was sent to (RFC 8555 §6.4)")
        account, key = self._signer(jws, links, resource, endpoint.label)
        try:
            verify_jws(jws, key)
        except JWSError as exc:
            raise _jws_problem(exc) from exc
        if account is not None:  # proven by the signature: refusals from here name it
            exchange.actor = f"acme:{account.id}"
        return Signed(jws, key, account, endpoint, links, request.url)

    def _signer(self, jws: JWS, links: Links, resource: str,
                label: str) -> tuple[ACMEAccount | None, PublicKey]:
        """The signing account and key. An account belongs to the endpoint it was created on
        (its EAB requirement, its challenges): another endpoint does not know it."""
        if jws.jwk is not None:
            if resource not in JWK_RESOURCES:
                raise ACMEProblem("malformed", "this request must be signed with kid, the "
                                               "account URL (RFC 8555 §6.2)")
            try:
                key = public_key_from_jwk(jws.jwk)
            except JWSError as exc:
                raise _jws_problem(exc) from exc
            account = self.state.account_by_thumbprint(thumbprint(key))
            if account is not None and account.label != label:
                if resource == "new-account":
                    raise ACMEProblem("malformed", "this key holds an account of another ACME "
                                                   "endpoint; use one key per endpoint")
                account = None  # revokeCert: only as the certificate's key
            return account, key
        if resource == "new-account":
            raise ACMEProblem("malformed", "newAccount must be signed with jwk (RFC 8555 §6.2)")
        account = self._account_of_kid(jws.kid or "", links, label)
        return account, public_key_from_jwk(account.jwk)

    def _account_of_kid(self, kid: str, links: Links, label: str) -> ACMEAccount:
        prefix = links.account("")
        account_id = kid[len(prefix):] if kid.startswith(prefix) else ""
        account = None
        if account_id and "/" not in account_id:
            account = self.state.account(account_id)
        if account is None or account.label != label:
            raise ACMEProblem("accountDoesNotExist", f"no account {kid!r} on this endpoint")
        if account.status != VALID:
            raise ACMEProblem("unauthorized", f"account {kid} is {account.status}")
        return account

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, action: str, outcome: str, actor: str, target: str,
              details: dict[str, Any]) -> None:
        self.state.audit(action, outcome, actor, target, details)

    def _audit_problem(self, request: ACMERequest, problem: ACMEProblem, actor: str) -> None:
        details = {"reason": problem.reason.value, "problem": problem.kind,
                   "detail": problem.detail, "protocol": "acme", "label": request.label,
                   "operation": "/".join(request.path[:1]) or "-"}
        self.audit("acme.request", "refused", actor, request.label or "-", details)


def _jws_problem(exc: JWSError) -> ACMEProblem:
    if exc.problem == "badSignatureAlgorithm":
        return ACMEProblem(exc.problem, exc.detail, algorithms=list(SIGNATURE_ALGORITHMS))
    return ACMEProblem(exc.problem, exc.detail)
