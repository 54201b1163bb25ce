"""EST server routes (RFC 7030 §4, RFC 8951): a thin Starlette adapter.

- §4.1 GET cacerts → 200 `application/pkcs7-mime; smime-type=certs-only`, base64.
- §4.2.1 POST simpleenroll, §4.2.2 POST simplereenroll: body `application/pkcs10` (base64
  DER); 200 with the new certificate as certs-only PKCS#7; §4.2.3 202 + Retry-After (empty
  body) while a manual approval is pending; 4xx with a text/plain explanation when refused.
- §4.4 POST serverkeygen → 200 `multipart/mixed` (application/pkcs8 + certs-only); with an
  AsymmetricDecryptKeyIdentifier (§4.4.1.2) the key part is `application/pkcs7-mime;
  smime-type=server-generated-key` (EnvelopedData to the TLS client certificate, §4.4.2).
- §4.5 GET csrattrs → 200 `application/csrattrs` (base64 DER CsrAttrs) from the profile.
- §3.2.3 / §3.3: a request without usable credentials gets 401 with
  `WWW-Authenticate: Basic`; authenticated but not allowed gets 403. On an endpoint with
  one-time secrets and manual approval, a request without credentials is challenged (401)
  before it can be queued (the core decides: `EndpointEnrollment.enroll(challenge=True)`).

The adapter decodes, calls the core's endpoint enrollment and encodes; it decides nothing
about who may enroll. Refusals made here (malformed body, wrong media type) are audited
through the same core service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iotpki.core.errors import NotFoundError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.outcomes import Issued, Pending
from iotpki.core.ra.endpoint_enrollment import GeneratedEnrollment, Outcome, Refusal
from iotpki.core.ra.endpoints import Endpoint
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.protocols.channel_binding import (
    ChannelBindingError,
    check_channel_binding,
    session_binding,
)
from iotpki.protocols.est.identity import ClientIdentity, CredentialsError, client_identity
from iotpki.protocols.est.keygen import KeyRecipientError, key_recipient
from iotpki.wire.errors import DecodeError
from iotpki.wire.est import (
    CERTS_ONLY,
    CSR_ATTRS,
    PKCS10,
    csr_attributes_for_key_type,
    decode_csr_body,
    encode_base64_body,
    encode_certs_only,
    encode_csr_attributes,
    encode_serverkeygen,
)
from iotpki.wire.est_keygen import encode_encrypted_serverkeygen

PROTOCOL = "est"
MAX_BODY = 64 * 1024
REALM = 'Basic realm="iotpki EST", charset="UTF-8"'
log = logging.getLogger(__name__)

# §4.2.3: refused requests get a 4xx; which one says whose fault it is.
_UNAUTHENTICATED = {R.NO_CLIENT_IDENTITY, R.BAD_SECRET}
_FORBIDDEN = {R.REGISTRATION_LOCKED, R.NOT_REGISTERED, R.REGISTRATION_CONSUMED, R.REGISTRATION_EXPIRED,
              R.UNTRUSTED_CHAIN, R.REVOKED, R.CERTIFICATE_EXPIRED, R.POSSESSION_NOT_PROVEN,
              R.IDENTITY_MISMATCH, R.METHOD_NOT_ALLOWED, R.DOMAIN_NOT_OWNED}
_SERVER_FAULT = {R.UNKNOWN_PROFILE, R.UNKNOWN_AUTHORITY, R.AUTHORITY_CANNOT_ISSUE}
_RETRY_LATER = {R.TOO_MANY_ATTEMPTS, R.APPROVAL_QUEUE_FULL}  # RFC 6585 §4
# The presented identity's revocation status cannot be established now (its issuer's CRL is
# unreachable): refused; the client may retry later.
_UNAVAILABLE = {R.REVOCATION_UNKNOWN}
_BAD_REQUEST = {R.MALFORMED_REQUEST, R.BAD_SIGNATURE, R.UNSUPPORTED_KEY, R.KEY_NOT_ALLOWED,
                R.SUBJECT_NOT_ALLOWED, R.SAN_NOT_ALLOWED, R.WILDCARD, R.VALIDITY_EXCEEDS_ISSUER,
                R.VALIDITY_EXCEEDS_PROFILE, R.NAME_CONSTRAINTS, R.KEY_ENCRYPTION_UNAVAILABLE,
                # manifest imports have no EST form:
                R.MANIFEST_MALFORMED, R.MANIFEST_EXPIRED, R.REPLAYED, R.WRONG_RECIPIENT,
                R.UNTRUSTED_SUPPLIER, R.SIGNER_REVOKED, R.NOT_A_SIGNER, R.BAD_TARGET}
# The HTTP status of every refusal of the core: total over RefusalReason (tests/test_refusals.py).
STATUS_FOR_REASON: Mapping[R, int] = {
    **dict.fromkeys(_BAD_REQUEST, 400), **dict.fromkeys(_UNAUTHENTICATED, 401),
    **dict.fromkeys(_FORBIDDEN, 403), **dict.fromkeys(_RETRY_LATER, 429),
    **dict.fromkeys(_SERVER_FAULT, 500), **dict.fromkeys(_UNAVAILABLE, 503)}


class EnrollmentEndpoints(Protocol):
    """What EST needs from the core (`iotpki.core.ra.endpoint_enrollment.EndpointEnrollment`)."""

    def endpoint(self, protocol: str, label: str) -> Endpoint: ...

    def ca_certificates(self, endpoint: Endpoint) -> tuple[x509.Certificate, ...]: ...

    def key_types(self, endpoint: Endpoint) -> tuple[str, ...]: ...

    def client_chain(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]: ...

    def enroll(self, endpoint: Endpoint, request: EnrollmentRequest,
               challenge: bool = False) -> Outcome: ...

    def renew(self, endpoint: Endpoint, request: EnrollmentRequest) -> Outcome: ...

    def enroll_with_server_key(self, endpoint: Endpoint, request: EnrollmentRequest,
                               renewal: bool = False,
                               recipient: x509.Certificate | None = None,
                               challenge: bool = False) -> GeneratedEnrollment: ...

    def refuse(self, refusal: Refusal) -> None: ...


class BadRequestError(Exception):
    """Refused by the adapter itself; carries the HTTP status and the audited reason."""

    def __init__(self, status: int, reason: R, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Call:
    """One EST request after routing: which endpoint, which operation, who asks."""

    endpoint: Endpoint
    operation: str
    identity: ClientIdentity


def status_for(reason: R) -> int:
    return STATUS_FOR_REASON[reason]


def text(status: int, detail: str) -> Response:
    if status == 401:
        return challenge()
    headers = {"Retry-After": "60"} if status in (429, 503) else {}
    return PlainTextResponse(f"{detail}\n", status_code=status, headers=headers)


def challenge() -> Response:
    """RFC 7030 §3.2.3 / RFC 7235 §3.1: every 401 is a bare challenge with an empty body,
    whether credentials were missing, wrong or unreadable (the reason is in the audit log).
    BouncyCastle's EST client closes a 401 unread and then fails on a body it did not
    consume, and its Basic authentication never happens."""
    return Response(b"", status_code=401, headers={"WWW-Authenticate": REALM})


def certs_only(certificates: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> Response:
    return Response(encode_certs_only(certificates), media_type=CERTS_ONLY,
                    headers={"Content-Transfer-Encoding": "base64"})


def outcome_response(outcome: Outcome) -> Response:
    if isinstance(outcome, Issued):
        return certs_only([outcome.certificate])  # §4.2.3: the issued certificate only
    if isinstance(outcome, Pending):
        # §4.2.3: 202 + Retry-After, the body empty: BouncyCastle's client (1.72) closes a
        # 202 unread and then fails on a body it did not consume, as with a 401 (challenge()).
        return Response(b"", status_code=202,
                        headers={"Retry-After": str(outcome.retry_after_seconds)})
    return text(status_for(outcome.reason), f"{outcome.reason.value}: {outcome.detail}")


Handler = Callable[[Call, Request], Awaitable[Response]]


class ESTServer:
    def __init__(self, endpoints: EnrollmentEndpoints, trusted_proxies: Collection[str]) -> None:
        self._endpoints = endpoints
        self._trusted_proxies = frozenset(trusted_proxies)
        self._handlers: dict[tuple[str, str], Handler] = {
            ("GET", "cacerts"): self._cacerts, ("GET", "csrattrs"): self._csrattrs,
            ("POST", "simpleenroll"): self._simpleenroll,
            ("POST", "simplereenroll"): self._simplereenroll,
            ("POST", "serverkeygen"): self._serverkeygen}

    async def handle(self, request: Request) -> Response:
        label = request.path_params.get("label", "")
        operation = request.path_params["operation"]
        try:
            endpoint = self._endpoints.endpoint(PROTOCOL, label)
        except NotFoundError:
            return text(404, f"no EST endpoint labelled {label!r}")
        handler = self._handlers.get((request.method, operation))
        if handler is None:
            return self._unknown(request.method, operation)
        try:
            call = Call(endpoint, operation,
                        client_identity(request, self._trusted_proxies))
            return await handler(call, request)
        except CredentialsError as exc:
            return await self._refused(request, label, operation, BadRequestError(
                401, R.NO_CLIENT_IDENTITY, str(exc)))
        except BadRequestError as exc:
            return await self._refused(request, label, operation, exc)

    @staticmethod
    def _unknown(method: str, operation: str) -> Response:
        known = {"cacerts": "GET", "csrattrs": "GET", "simpleenroll": "POST",
                 "simplereenroll": "POST", "serverkeygen": "POST"}
        if operation in known:
            return PlainTextResponse(f"{operation} takes {known[operation]}\n",
                                     status_code=405, headers={"Allow": known[operation]})
        return text(404, f"unknown EST operation {operation!r}")

    async def _refused(self, request: Request, label: str, operation: str,
                       error: BadRequestError) -> Response:
        address = request.client.host if request.client else "-"
        log.info("EST %s from %s refused: %s (%d)", operation, address, error.reason.value,
                 error.status)  # one line; the detail is in the audit log
        await run_in_threadpool(self._endpoints.refuse, Refusal(
            PROTOCOL, label, f"est:{address}", error.reason, error.detail, operation))
        return text(error.status, error.detail)

    # -- operations ---------------------------------------------------------------------------

    async def _cacerts(self, call: Call, request: Request) -> Response:
        return certs_only(await run_in_threadpool(self._endpoints.ca_certificates, call.endpoint))

    async def _csrattrs(self, call: Call, request: Request) -> Response:
        key_types = self._endpoints.key_types(call.endpoint)
        der = encode_csr_attributes(csr_attributes_for_key_type(key_types[0]))
        return Response(encode_base64_body(der), media_type=CSR_ATTRS,
                        headers={"Content-Transfer-Encoding": "base64"})

    async def _simpleenroll(self, call: Call, request: Request) -> Response:
        enrollment = await self._enrollment_request(call, request)
        # §3.2.3: challenge = True, a request without credentials may be asked for them
        return outcome_response(await run_in_threadpool(
            self._endpoints.enroll, call.endpoint, enrollment, True))

    async def _simplereenroll(self, call: Call, request: Request) -> Response:
        enrollment = await self._enrollment_request(call, request)
        if not enrollment.client_chain:
            # §4.2.2: re-enrollment authenticates with the certificate being renewed.
            raise BadRequestError(401, R.NO_CLIENT_IDENTITY, "simplereenroll needs the current "
                                                              "certificate as TLS client certificate")
        return outcome_response(await run_in_threadpool(
            self._endpoints.renew, call.endpoint, enrollment))

    async def _serverkeygen(self, call: Call, request: Request) -> Response:
        enrollment = await self._enrollment_request(call, request)
        try:
            recipient = key_recipient(enrollment.csr, call.identity.certificate)
        except KeyRecipientError as exc:
            raise BadRequestError(400, exc.reason, exc.detail) from exc
        generated = await run_in_threadpool(
            self._endpoints.enroll_with_server_key, call.endpoint, enrollment, False, recipient,
            True)
        if not isinstance(generated.outcome, Issued):
            return outcome_response(generated.outcome)
        if generated.encrypted_key is not None:  # §4.4.2
            media, body = encode_encrypted_serverkeygen(generated.encrypted_key,
                                                        generated.outcome.certificate)
        elif generated.private_key_pkcs8 is not None:
            media, body = encode_serverkeygen(generated.private_key_pkcs8,
                                              generated.outcome.certificate)
        else:
            return outcome_response(generated.outcome)
        return Response(body, media_type=media, headers={"Cache-Control": "no-store"})

    async def _enrollment_request(self, call: Call, request: Request) -> EnrollmentRequest:
        body = await _pkcs10_body(request)
        try:
            csr = decode_csr_body(body)
        except DecodeError as exc:
            raise BadRequestError(400, R.MALFORMED_REQUEST, str(exc)) from exc
        try:  # §3.5, before the enrollment methods see the request
            check_channel_binding(csr, session_binding(request.scope),
                                  call.endpoint.channel_binding)
        except ChannelBindingError as exc:
            raise BadRequestError(exc.status, exc.reason, exc.detail) from exc
        identity = call.identity
        chain = (self._endpoints.client_chain(identity.certificate)
                 if identity.certificate is not None else ())
        return EnrollmentRequest(
            csr=csr, requester=identity.requester, client_chain=chain,
            possession="tls" if chain else None, registration_id=identity.username,
            secret=identity.password, client=identity.address)


async def _pkcs10_body(request: Request) -> bytes:
    """§4.2.1: the body must be `application/pkcs10`; size bounded."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != PKCS10:
        raise BadRequestError(415, R.MALFORMED_REQUEST,
                              f"Content-Type must be {PKCS10}, not {media or 'missing'!r}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise BadRequestError(413, R.MALFORMED_REQUEST, "request body too large")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise BadRequestError(400, R.MALFORMED_REQUEST, "client disconnected") from exc
    return b"".join(chunks)


def routes(endpoints: EnrollmentEndpoints, trusted_proxies: Collection[str] = ()) -> list[Route]:
    server = ESTServer(endpoints, trusted_proxies)
    methods = ["GET", "POST", "PUT", "DELETE"]
    return [
        Route("/.well-known/est/{operation}", server.handle, methods=methods),
        Route("/.well-known/est/{label}/{operation}", server.handle, methods=methods),
    ]
