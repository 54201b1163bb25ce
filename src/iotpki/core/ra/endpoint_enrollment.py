"""What an enrollment protocol adapter (EST, CMP) needs behind one labelled endpoint: the
CA certificates to publish, the key types to ask for, enrollment with the endpoint's methods,
server-side key generation, and the audit of refusals made before the core was reached.

RFC 7030 §4.1 (CA certificates), §4.2 (enroll / re-enroll with the endpoint's methods),
§3.2.3 (credentials before approval: on an endpoint with one-time secrets and manual
approval, a request without credentials is challenged first where the protocol can ask for
credentials; queued only when sent again without them, `core.ra.approval`),
§4.2.3 (a repeated request for a manual approval is recognized by subject and public key,
not queued again),
§4.4 (server-side key generation: the key is made here and returned once, encrypted to the
client certificate if asked (§4.4.2, `core.ra.key_delivery`); kept only, sealed, when the
profile archives keys),
§4.5 (CSR attributes from the profile's key types).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.issuance import AttachedWrites
from iotpki.core.ca.profile import Profile
from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError, PolicyError, RefusalReason
from iotpki.core.events import Event
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.approval import check_possession
from iotpki.core.ra.endpoints import Endpoint, Endpoints
from iotpki.core.ra.enrollment import MANUAL_APPROVAL, EnrollmentRequest, EnrollmentService
from iotpki.core.ra.key_delivery import GeneratedKey, KeyDelivery, KeyDeliveryError
from iotpki.wire.cms_envelope import CertificateRecipient
from iotpki.wire.csr import decode_csr
from iotpki.wire.errors import DecodeError
from iotpki.wire.key_package import enveloped_content_info
from iotpki.wire.keys import generate_private_key, signature_hash_for

Outcome = Issued | Pending | Rejected


@dataclass(frozen=True)
class Refusal:
    """A request refused by an adapter before enrollment (malformed body, wrong media type)."""

    protocol: str
    label: str
    requester: str
    reason: RefusalReason
    detail: str
    operation: str


@dataclass(frozen=True)
class GeneratedEnrollment:
    outcome: Outcome
    private_key_pkcs8: bytes | None  # DER PrivateKeyInfo, only when issued
    encrypted_key: bytes | None = None  # ContentInfo(EnvelopedData) instead, RFC 7030 §4.4.2


class EndpointEnrollment:
    def __init__(self, uow: UnitOfWorkFactory, endpoints: Endpoints, enrollment: EnrollmentService,
                 profiles: Mapping[str, Profile], clock: Clock,
                 key_delivery: KeyDelivery | None = None) -> None:
        self._uow = uow
        self._key_delivery = key_delivery
        self._endpoints = endpoints
        self._enrollment = enrollment
        self._profiles = profiles
        self._clock = clock
        self._chains: dict[str, tuple[x509.Certificate, ...]] = {}
        self._issuers: dict[x509.Name, tuple[x509.Certificate, ...]] | None = None

    def endpoint(self, protocol: str, label: str) -> Endpoint:
        """Raise `NotFoundError` for a label no endpoint declares."""
        return self._endpoints.get(protocol, label)

    def ca_certificates(self, endpoint: Endpoint) -> tuple[x509.Certificate, ...]:
        """The endpoint's issuing CA and its issuers up to the root (cached per process)."""
        chain = self._chains.get(endpoint.authority)
        if chain is None:
            with self._uow() as uow:
                authority = uow.authorities.get(endpoint.authority)
            if authority is None:
                raise NotFoundError(f"endpoint {endpoint.label!r} names unknown authority "
                                    f"{endpoint.authority!r}")
            chain = self._chains[endpoint.authority] = authority.full_chain
        return chain

    def key_types(self, endpoint: Endpoint) -> tuple[str, ...]:
        profile = self._profiles.get(endpoint.profile)
        if profile is None:
            raise NotFoundError(f"endpoint {endpoint.label!r} names unknown profile "
                                f"{endpoint.profile!r}")
        return profile.key_types

    def client_chain(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """The presented certificate followed by the hosted CA certificates above it: TLS
        stacks hand over the leaf only, path validation needs the intermediates."""
        if self._issuers is None or leaf.issuer not in self._issuers:
            with self._uow() as uow:  # read again: an authority may have been added
                self._issuers = {a.certificate.subject: a.full_chain
                                 for a in uow.authorities.list()}
        above = self._issuers.get(leaf.issuer, ())
        return (leaf, *(c for c in above if c.subject != c.issuer))

    def enroll(self, endpoint: Endpoint, request: EnrollmentRequest,
               challenge: bool = False, attached: AttachedWrites | None = None) -> Outcome:
        """A first enrollment with the first of the endpoint's methods that applies to the
        request; if none does, the first one (its refusal names what is missing).

        `challenge`: the protocol can ask the client for credentials (EST: HTTP 401, RFC 7030
        §3.2.3). A request bound for manual approval is first matched with the requests
        queued before (§4.2.3); if it is new, carries no secret and the endpoint takes one,
        it is refused with `no-client-identity` (the challenge) unless the same request was
        challenged before (the client chose not to authenticate).

        `attached`: written in the transaction that stores an issuance's outcome (a message
        protocol's senderNonce, `core.ca.issuance.AttachedWrites`); not written when the
        request is queued or refused before issuance."""
        request = replace(request, authority=endpoint.authority, profile=endpoint.profile)
        method = self._enrollment.select(endpoint.methods, request) or endpoint.methods[0]
        if method == MANUAL_APPROVAL:
            approval = self._enrollment.approval
            try:
                check_possession(request.csr)
            except PolicyError as exc:
                self.refuse(Refusal(endpoint.protocol, endpoint.label, request.requester,
                                    exc.reason, exc.detail, "enroll"))
                return Rejected(exc.reason, exc.detail)
            retried = approval.repeated(endpoint.authority, endpoint.profile, request.csr)
            if retried is not None:
                return retried
            if challenge and _challenges(endpoint, request) and not approval.challenged(
                    endpoint.authority, endpoint.profile, request.csr):
                approval.challenge(endpoint.authority, endpoint.profile, request.csr,
                                   request.client)
                return self._challenged(endpoint, request, "enroll")
        return self._enrollment.enroll(request, method, attached)

    def _challenged(self, endpoint: Endpoint, request: EnrollmentRequest,
                    operation: str) -> Rejected:
        detail = ("credentials first (RFC 7030 §3.2.3): this endpoint takes a registration "
                  "id and one-time secret; the same request sent again without credentials "
                  "is queued for an operator's approval")
        self.refuse(Refusal(endpoint.protocol, endpoint.label, request.requester,
                            RefusalReason.NO_CLIENT_IDENTITY, detail, operation))
        return Rejected(RefusalReason.NO_CLIENT_IDENTITY, detail)

    def renew(self, endpoint: Endpoint, request: EnrollmentRequest,
              attached: AttachedWrites | None = None) -> Outcome:
        """RFC 7030 §4.2.2: re-enrollment with the endpoint's renewal method."""
        request = replace(request, authority=endpoint.authority, profile=endpoint.profile)
        return self._enrollment.enroll(request, endpoint.renewal, attached)

    def enroll_with_server_key(self, endpoint: Endpoint, request: EnrollmentRequest,
                               renewal: bool = False,
                               recipient: x509.Certificate | None = None,
                               challenge: bool = False) -> GeneratedEnrollment:
        """RFC 7030 §4.4: a key of the profile's first key type is made here; the client's CSR
        only names the subject and extensions. With `recipient` (§4.4.2) the key goes back
        enveloped for that certificate, else as plain PKCS #8 (the TLS channel protects it).
        A server-made key cannot wait for an operator: a request that would be queued for
        manual approval is challenged (`challenge`, the endpoint takes one-time secrets) or
        refused before any key is made."""
        if not renewal:
            waiting = self._no_approval_for_server_keys(endpoint, request, challenge)
            if waiting is not None:
                return GeneratedEnrollment(waiting, None)
        try:
            generated = self._generate(endpoint)
            csr = _resigned(request.csr, generated.key)
            enveloped = self._envelope(endpoint, generated, recipient)
        except DecodeError as exc:
            return self._refused(endpoint, request, RefusalReason.MALFORMED_REQUEST, str(exc))
        except KeyDeliveryError as exc:
            return self._refused(endpoint, request, exc.reason, exc.detail)
        request = replace(request, csr=csr)
        outcome = self.renew(endpoint, request) if renewal else self.enroll(endpoint, request)
        if not isinstance(outcome, Issued):
            return GeneratedEnrollment(outcome, None)
        if self._key_delivery is not None:
            self._key_delivery.record(generated, outcome, request.requester)
        if enveloped is None:
            return GeneratedEnrollment(outcome, generated.pkcs8)
        return GeneratedEnrollment(outcome, None, enveloped_content_info(enveloped))

    def _no_approval_for_server_keys(self, endpoint: Endpoint, request: EnrollmentRequest,
                                     challenge: bool) -> Rejected | None:
        asked = replace(request, authority=endpoint.authority, profile=endpoint.profile)
        method = self._enrollment.select(endpoint.methods, asked) or endpoint.methods[0]
        if method != MANUAL_APPROVAL:
            return None
        if challenge and _challenges(endpoint, request):
            return self._challenged(endpoint, request, "serverkeygen")
        detail = ("a server-generated key cannot wait for an operator's approval: "
                  "authenticate, or send a key of your own (simpleenroll)")
        self.refuse(Refusal(endpoint.protocol, endpoint.label, request.requester,
                            RefusalReason.METHOD_NOT_ALLOWED, detail, "serverkeygen"))
        return Rejected(RefusalReason.METHOD_NOT_ALLOWED, detail)

    def _refused(self, endpoint: Endpoint, request: EnrollmentRequest, reason: RefusalReason,
                 detail: str) -> GeneratedEnrollment:
        self.refuse(Refusal(endpoint.protocol, endpoint.label, request.requester, reason, detail,
                            "serverkeygen"))
        return GeneratedEnrollment(Rejected(reason, detail), None)

    def _envelope(self, endpoint: Endpoint, generated: GeneratedKey,
                  recipient: x509.Certificate | None) -> bytes | None:
        """The key enveloped for `recipient` before anything is issued: an answer that cannot
        be built must not leave an issued certificate whose key nobody received."""
        if recipient is None or self._key_delivery is None:
            return None
        return self._key_delivery.envelope(generated, endpoint.authority,
                                           CertificateRecipient(recipient))

    def _generate(self, endpoint: Endpoint) -> GeneratedKey:
        if self._key_delivery is not None:
            return self._key_delivery.generate(endpoint.profile)
        key_type = self.key_types(endpoint)[0]
        return GeneratedKey(generate_private_key(key_type), key_type, None)

    def refuse(self, refusal: Refusal) -> None:
        """Audit a refusal that never reached the enrollment methods (nothing was issued)."""
        now = self._clock.now()
        details = {"reason": refusal.reason.value, "detail": refusal.detail,
                   "protocol": refusal.protocol, "label": refusal.label,
                   "operation": refusal.operation}
        with self._uow() as uow:
            append_audit(uow.audit, now, AuditRecord(
                f"{refusal.protocol}.request", "refused", refusal.requester,
                refusal.label or "-", details))
            uow.events.add(Event("enrollment.refused", now, details))
            uow.commit()

def _challenges(endpoint: Endpoint, request: EnrollmentRequest) -> bool:
    """A request without a secret, on an endpoint that takes one: ask for it first."""
    return (request.registration_id is None
            and MethodName.ONE_TIME_SECRET in endpoint.methods)


def _resigned(csr_der: bytes, key: Any) -> bytes:
    """The client's subject and requested extensions, signed by the server-made key."""
    csr = decode_csr(csr_der)
    builder = x509.CertificateSigningRequestBuilder().subject_name(csr.subject)
    try:
        for extension in csr.extensions:
            builder = builder.add_extension(extension.value, extension.critical)
    except ValueError as exc:
        raise DecodeError(f"malformed extension request in CSR: {exc}") from exc
    return builder.sign(key, signature_hash_for(key)).public_bytes(serialization.Encoding.DER)
