"""ACME orders, authorizations and challenges (RFC 8555 §7.4, §7.5, §7.1.6), finalize.

- newOrder: each identifier is checked before anything is stored: a type the endpoint's
  challenges can prove (`dns` for http-01/dns-01/tls-alpn-01, `permanent-identifier` for
  device-attest-01), never a wildcard, a valid name, and — "the domain is the
  authorization" — a name inside an organization's operational domain only for an account
  bound to that organization (`rejectedIdentifier`, reason `domain-not-owned`). Rate limits
  per account and per organization (`rateLimited`).
- A valid authorization of the account for the same identifier is reused (§7.1.3).
- A challenge is validated when the client posts to it; the answer carries the result.
- finalize (§7.4): the order must be ready (`orderNotReady`); the CSR names exactly the
  order's identifiers, with a key other than the account key (`badCSR`); the certificate
  is issued through the core's issuance pipeline (profile, domains, audit) with the order's
  names. A refusal leaves the order invalid with the problem; nothing is issued.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID

from iotpki.core.ca.issuance import IssuanceRequest, IssuanceService
from iotpki.core.clock import Clock
from iotpki.core.errors import RefusalReason as R
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Pending
from iotpki.core.ra.acme import (
    DEACTIVATED,
    INVALID,
    PENDING,
    PROCESSING,
    READY,
    VALID,
    ACMEAccount,
    ACMEAuthorization,
    ACMEChallenge,
    ACMEOrder,
)
from iotpki.core.ra.acme_state import ACMEState
from iotpki.core.ra.enrollment import EnrollmentRequest, EnrollmentService
from iotpki.core.supply_chain.domain import valid_domain_name
from iotpki.protocols.acme.ari import certificate_of
from iotpki.protocols.acme.attest import POSSESSION
from iotpki.protocols.acme.problems import ACMEProblem, NotFound, refused
from iotpki.protocols.acme.resources import authorization_json, challenge_json, order_json
from iotpki.protocols.acme.server import ACMEAnswer, ACMEServer, Signed
from iotpki.protocols.acme.validation import ChallengeFailed, ChallengeInput, Validator
from iotpki.wire.acme.jws import JWSError, b64url_encode, spki_der, thumbprint
from iotpki.wire.acme.messages import (
    Identifier,
    decode_finalize,
    decode_new_order,
    key_authorization,
    problem,
)
from iotpki.wire.csr import decode_csr
from iotpki.wire.errors import DecodeError

DOMAIN_CHALLENGES = ("http-01", "dns-01", "tls-alpn-01")
ATTEST_CHALLENGES = ("device-attest-01",)


@dataclass(frozen=True)
class ACMELimits:
    """Orders per hour (0: unlimited) and lifetimes."""

    orders_per_account: int = 300
    orders_per_organization: int = 3000
    order_lifetime: timedelta = timedelta(days=1)
    valid_authorization: timedelta = timedelta(days=30)


class ACMEOrders:
    def __init__(self, server: ACMEServer, issuance: IssuanceService,
                 validators: Mapping[str, Validator], clock: Clock,
                 limits: ACMELimits = ACMELimits(),
                 enrollment: EnrollmentService | None = None) -> None:
        self._server = server
        self._enrollment = enrollment
        self._state = server.state
        self._issuance = issuance
        self._validators = validators
        self._clock = clock
        self._limits = limits
        server.on_post("new-order", self.new_order)
        server.on_post("order", self.order)
        server.on_post("authz", self.authorization)
        server.on_post("chall", self.challenge)

    # -- §7.4 newOrder ---------------------------------------------------------------------------

    def new_order(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        account = signed.owned()
        if rest:
            raise NotFound("no such resource")
        try:
            request = decode_new_order(signed.jws.json_payload())
        except JWSError as exc:
            raise ACMEProblem(exc.problem, exc.detail) from exc
        kinds = {i.type for i in request.identifiers}
        if "permanent-identifier" in kinds and len(request.identifiers) > 1:
            raise ACMEProblem("rejectedIdentifier", "a permanent-identifier order names one "
                                                    "device and nothing else", R.SAN_NOT_ALLOWED)
        now = self._clock.now()
        self._check_rate(account, now)
        for identifier in request.identifiers:
            self._check_identifier(signed, account, identifier)
        if request.replaces is not None:
            _check_replaces(self._state, account, request.replaces)
        order, fresh = self._build_order(signed, account, request.identifiers, now)
        order = replace(order, replaces=request.replaces)
        self._state.add_order(order, fresh)
        self._server.audit("acme.order.create", "success", signed.actor, order.id, {
            "label": signed.endpoint.label, "identifiers": [v for _, v in order.identifiers],
            "organization": account.organization})
        return ACMEAnswer(201, order_json(signed.links, order),
                          headers={"Location": signed.links.order(order.id)})

    def _check_rate(self, account: ACMEAccount, now: datetime) -> None:
        since = now - timedelta(hours=1)
        limit = self._limits.orders_per_account
        if limit and self._state.count_orders(account.id, None, since) >= limit:
            raise ACMEProblem("rateLimited", f"at most {limit} orders per account and hour",
                              R.TOO_MANY_ATTEMPTS)
        limit = self._limits.orders_per_organization
        if limit and account.organization is not None and \
                self._state.count_orders(None, account.organization, since) >= limit:
            raise ACMEProblem("rateLimited", f"at most {limit} orders per organization and "
                                             "hour", R.TOO_MANY_ATTEMPTS)

    def _check_identifier(self, signed: Signed, account: ACMEAccount,
                          identifier: Identifier) -> None:
        offered = signed.endpoint.challenges
        if identifier.type == "permanent-identifier":
            if "device-attest-01" not in offered:
                raise ACMEProblem("unsupportedIdentifier", "this endpoint takes no "
                                  "permanent-identifier (no device-attest-01)")
            return
        if identifier.type != "dns" or not set(offered) & set(DOMAIN_CHALLENGES):
            raise ACMEProblem("unsupportedIdentifier",
                              f"this endpoint takes no {identifier.type} identifiers")
        name = identifier.value
        if "*" in name:
            raise refused(R.WILDCARD, f"wildcard {name!r} is never issued")
        if not valid_domain_name(name):
            raise ACMEProblem("rejectedIdentifier", f"{name!r} is not a valid DNS name",
                              R.SAN_NOT_ALLOWED)
        owner = self._state.domain_owner(name)
        if owner is not None and owner != account.organization:
            raise refused(R.DOMAIN_NOT_OWNED, f"{name} lies in an operational domain of "
                                              f"{owner}; only accounts bound to {owner} "
                                              "(External Account Binding) may order it")

    def _build_order(self, signed: Signed, account: ACMEAccount,
                     identifiers: tuple[Identifier, ...],
                     now: datetime) -> tuple[ACMEOrder, list[ACMEAuthorization]]:
        expires = now + self._limits.order_lifetime
        authz_ids, fresh = [], []
        for identifier in identifiers:
            # §7.1.3 reuse is for names; a device attests afresh for every order (an
            # attestation is evidence of one key at one time, and decides one issuance).
            reused = None if identifier.type == "permanent-identifier" else \
                self._state.valid_authorization(account.id, identifier.type,
                                                identifier.value, now)
            if reused is not None:
                authz_ids.append(reused.id)
                continue
            kinds = ATTEST_CHALLENGES if identifier.type == "permanent-identifier" else \
                DOMAIN_CHALLENGES
            challenges = tuple(ACMEChallenge(k, b64url_encode(secrets.token_bytes(32)))
                               for k in signed.endpoint.challenges if k in kinds)
            authz = ACMEAuthorization(uuid.uuid4().hex, account.id, signed.endpoint.label,
                                      identifier.type, identifier.value, PENDING, expires,
                                      challenges, now)
            fresh.append(authz)
            authz_ids.append(authz.id)
        status = READY if not fresh else PENDING
        order = ACMEOrder(uuid.uuid4().hex, account.id, signed.endpoint.label, status,
                          tuple((i.type, i.value) for i in identifiers), tuple(authz_ids),
                          expires, now)
        return order, fresh

    # -- §7.1.3 order, §7.4 finalize ----------------------------------------------------------

    def order(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        order = self._own_order(signed, rest[:1])
        if rest[1:] == ("finalize",):
            return self._finalize(signed, order)
        if rest[1:]:
            raise NotFound("no such resource")
        return ACMEAnswer(200, order_json(signed.links, order),
                          headers={"Location": signed.links.order(order.id)})

    def _own_order(self, signed: Signed, rest: tuple[str, ...]) -> ACMEOrder:
        account = signed.owned()
        order = self._state.order(rest[0]) if rest else None
        if order is None or order.label != signed.endpoint.label:
            raise NotFound("no such order")
        if order.account_id != account.id:
            raise ACMEProblem("unauthorized", "the order belongs to another account")
        return self._refresh(order)

    def _refresh(self, order: ACMEOrder) -> ACMEOrder:
        """§7.1.6: a pending order becomes ready once every authorization is valid, invalid
        once one is invalid or the order has expired."""
        now = self._clock.now()
        status = order.status
        if status == PENDING:
            states = [_state(self._state.authorization(a), now) for a in order.authorizations]
            if any(s != VALID and s != PENDING for s in states):
                status = INVALID
            elif all(s == VALID for s in states):
                status = READY
        if status in (PENDING, READY) and order.expires <= now:
            status = INVALID
        if status == order.status:
            return order
        updated = replace(order, status=status)
        self._state.update_order(updated, order.status)
        return updated

    def _finalize(self, signed: Signed, order: ACMEOrder) -> ACMEAnswer:
        if order.status != READY:
            raise ACMEProblem("orderNotReady", f"the order is {order.status}, not ready")
        try:
            csr_der = decode_finalize(signed.jws.json_payload())
        except JWSError as exc:
            raise ACMEProblem(exc.problem, exc.detail) from exc
        attested = order.identifiers[0][0] == "permanent-identifier"
        chain: tuple[x509.Certificate, ...] = ()
        method = MethodName.PREVIOUS_STAGE
        subject, sans = None, None
        if attested:
            if self._enrollment is None:
                raise ACMEProblem("serverInternal", "device attestation is not configured",
                                  R.UNKNOWN_PROFILE)
            chain, method = self._attested_chain(order, csr_der, signed)
        else:
            subject, sans = _check_csr(csr_der, order, signed)
        # one finalize at a time: ready → processing
        if not self._state.update_order(replace(order, status=PROCESSING), READY):
            raise ACMEProblem("orderNotReady", "the order is being finalized already")
        if attested and self._enrollment is not None:
            outcome = self._enrollment.enroll(EnrollmentRequest(
                csr_der, signed.actor, client_chain=chain, possession=POSSESSION,
                authority=signed.endpoint.authority, profile=signed.endpoint.profile),
                method)
        else:
            outcome = self._issuance.issue(IssuanceRequest(
                signed.endpoint.authority, signed.endpoint.profile, csr_der, signed.actor,
                subject=subject, sans=sans, method=MethodName.ACME))
        if isinstance(outcome, Issued):
            done = replace(order, status=VALID, certificate=outcome.record.fingerprint)
        elif isinstance(outcome, Pending):  # pragma: no cover - previous-stage never queues
            raise ACMEProblem("serverInternal", "the enrollment awaits an operator")
        else:
            error = refused(outcome.reason, outcome.detail)
            done = replace(order, status=INVALID, error=error.document())
        self._state.update_order(done, PROCESSING)
        if not isinstance(outcome, Issued):
            raise refused(outcome.reason, outcome.detail)
        return ACMEAnswer(200, order_json(signed.links, done),
                          headers={"Location": signed.links.order(done.id)})

    def _attested_chain(self, order: ACMEOrder, csr_der: bytes, signed: Signed,
                        ) -> tuple[tuple[x509.Certificate, ...], MethodName]:
        """The chain device-attest-01 proved, kept on the order's authorization, and the
        enrollment method that accepted it (previous stage, or current certificate)."""
        try:
            public = decode_csr(csr_der).public_key()
        except (DecodeError, ValueError) as exc:
            raise ACMEProblem("badCSR", f"the CSR does not decode: {exc}") from exc
        if spki_der(public) == spki_der(signed.key):
            raise ACMEProblem("badCSR", "the certificate key must not be the account key "
                                        "(RFC 8555 §11.1)")
        authz = self._state.authorization(order.authorizations[0])
        challenge = next((c for c in (authz.challenges if authz else ())
                          if c.type == "device-attest-01" and c.status == VALID), None)
        if challenge is None or not challenge.evidence:
            raise ACMEProblem("orderNotReady", "no device attestation backs this order")
        return (tuple(x509.load_der_x509_certificate(base64.b64decode(e))
                      for e in challenge.evidence),
                MethodName(challenge.method or MethodName.PREVIOUS_STAGE))

    # -- §7.5 authorizations and challenges -----------------------------------------------------

    def _own_authz(self, signed: Signed, authz_id: str) -> ACMEAuthorization:
        authz = self._state.authorization(authz_id)
        if authz is None or authz.label != signed.endpoint.label:
            raise NotFound("no such authorization")
        if authz.account_id != signed.owned().id:
            raise ACMEProblem("unauthorized", "the authorization belongs to another account")
        return authz

    def authorization(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        if len(rest) != 1:
            raise NotFound("no such resource")
        authz = self._own_authz(signed, rest[0])
        if not signed.post_as_get and signed.jws.json_payload().get("status") == DEACTIVATED:
            authz = self._deactivate(authz)  # §7.5.2
        authz = replace(authz, status=_state(authz, self._clock.now()))
        return ACMEAnswer(200, authorization_json(signed.links, authz))

    def _deactivate(self, authz: ACMEAuthorization) -> ACMEAuthorization:
        if authz.status not in (PENDING, VALID):
            raise ACMEProblem("malformed", f"the authorization is {authz.status}")
        updated = replace(authz, status=DEACTIVATED)
        self._state.update_authorization(updated, authz.status)
        return updated

    def challenge(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        if len(rest) != 2:
            raise NotFound("no such resource")
        authz = self._own_authz(signed, rest[0])
        challenge = next((c for c in authz.challenges if c.type == rest[1]), None)
        if challenge is None:
            raise NotFound("no such challenge")
        if not signed.post_as_get and authz.status == PENDING and \
                challenge.status == PENDING and authz.expires > self._clock.now():
            authz, challenge = self._validate(signed, authz, challenge)
        up = f'<{signed.links.authz(authz.id)}>;rel="up"'
        return ACMEAnswer(200, challenge_json(signed.links, authz, challenge),
                          headers={"Link": up})

    def _validate(self, signed: Signed, authz: ACMEAuthorization,
                  challenge: ACMEChallenge) -> tuple[ACMEAuthorization, ACMEChallenge]:
        account = signed.owned()
        payload = signed.jws.json_payload()
        attempt = ChallengeInput(challenge.type,
                                 Identifier(authz.identifier_type, authz.identifier_value),
                                 challenge.token,
                                 key_authorization(challenge.token, thumbprint(signed.key)),
                                 payload, account.organization, signed.endpoint.authority,
                                 signed.endpoint.profile)
        now = self._clock.now()
        try:
            evidence = self._validators[challenge.type](attempt)
        except ChallengeFailed as failure:
            done = replace(challenge, status=INVALID, error=problem(failure.kind, failure.detail))
            updated = replace(authz, status=INVALID, challenges=_swap(authz, done))
            outcome, details = "refused", {"problem": failure.kind, "detail": failure.detail,
                                           "reason": failure.reason.value}
        else:
            done = replace(challenge, status=VALID, validated=now,
                           evidence=tuple(base64.b64encode(e).decode()
                                          for e in (evidence.chain if evidence else ())),
                           method=evidence.method if evidence else None)
            updated = replace(authz, status=VALID, challenges=_swap(authz, done),
                              expires=now + self._limits.valid_authorization)
            outcome, details = "success", {}
        if not self._state.update_authorization(updated, PENDING):
            current = self._state.authorization(authz.id) or authz
            return current, next(c for c in current.challenges if c.type == challenge.type)
        self._server.audit("acme.challenge", outcome, signed.actor, authz.id, {
            "type": challenge.type, "identifier": authz.identifier_value,
            "label": signed.endpoint.label, **details})
        return updated, done


def _check_replaces(state: ACMEState, account: ACMEAccount, replaces: str) -> None:
    """RFC 9773 §5: the replaced certificate is one this account ordered."""
    record = certificate_of(state, replaces)
    order = None if record is None else state.order_for_certificate(record.fingerprint)
    if order is None or order.account_id != account.id:
        raise ACMEProblem("malformed", "replaces names no certificate this account ordered")


def _state(authz: ACMEAuthorization | None, now: datetime) -> str:
    if authz is None:
        return INVALID
    if authz.status in (PENDING, VALID) and authz.expires <= now:
        return "expired"
    return authz.status


def _swap(authz: ACMEAuthorization, done: ACMEChallenge) -> tuple[ACMEChallenge, ...]:
    return tuple(done if c.type == done.type else c for c in authz.challenges)


def _check_csr(der: bytes, order: ACMEOrder,
               signed: Signed) -> tuple[x509.Name, tuple[x509.GeneralName, ...]]:
    """§7.4: the CSR requests exactly the order's identifiers; §11.1: not the account key.
    Returns the subject and SANs to issue (CN = the CSR's CN or the first name)."""
    try:
        csr = decode_csr(der)
        extensions = csr.extensions
        public = csr.public_key()
    except (DecodeError, ValueError) as exc:
        raise ACMEProblem("badCSR", f"the CSR does not decode: {exc}") from exc
    names = [i for t, i in order.identifiers if t == "dns"]
    if len(names) != len(order.identifiers):
        raise ACMEProblem("badCSR", "this order is finalized by device attestation")
    requested: set[str] = set()
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    for general in san:
        if not isinstance(general, x509.DNSName):
            raise ACMEProblem("badCSR", f"the CSR asks for a name the order lacks: {general}")
        requested.add(general.value.lower().rstrip("."))
    common = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    cn = str(common[0]).lower().rstrip(".") if common else None
    if cn is not None:
        requested.add(cn)
    if requested != set(names):
        raise ACMEProblem("badCSR", f"the CSR names {sorted(requested)}, the order "
                                    f"{sorted(names)} (RFC 8555 §7.4)")
    if spki_der(public) == spki_der(signed.key):
        raise ACMEProblem("badCSR", "the certificate key must not be the account key "
                                    "(RFC 8555 §11.1)")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0])])
    return subject, tuple(x509.DNSName(n) for n in names)

