"""The CMP server of the Lightweight CMP profile (RFC 9483), protocol-neutral apart from
the codec (`iotpki.wire.cmp`); `protocols.cmp.routes` only carries bytes over HTTP.
What it needs from the core comes through the narrow ports of `protocols.cmp.ports`.

Order of checks (RFC 9483 §3.5): the header alone (`protocols.cmp.header`), protection
(MAC: `protocols.cmp.mac_clients`, the reference looked up before any key derivation;
signature), whether the header names the protector, the signer's trust and revocation
(`core.ra.presented`), replay (the senderNonce) and a new transactionID for a first
message, whether a MAC registration may still be used; only then the request itself.

- §3.2: MAC protection (PasswordBasedMac, PBMAC1) with a registration's secret, named by
  senderKID; signature protection with the signer's certificate first in extraCerts.
  Answers are protected the same way (MAC), or signed with the CA's CMP protection
  certificate (`protocols.cmp.protection`).
- §4.1.1-§4.1.4: ir, cr, kur, p10cr through `EnrollmentService` (the endpoint's label
  selects authority, profile and methods), the request checked first
  (`protocols.cmp.templates`, `protocols.cmp.key_update`); a certificate other than asked
  is grantedWithMods; certConf → pkiConf, or implicitConfirm.
- §4.1.3: one open kur per certificate (duplicateCertReq while one awaits its certConf).
- §4.2, §5.3.2: rr by the holder, an RA principal or a MAC registration that may revoke
  (`protocols.cmp.revocation`).
  §4.3: genm (`protocols.cmp.general`). §4.4: pollReq/pollRep during manual approval.
- §3.6.4: every refusal is protected and audited: an error message, or for a refusal of
  the certificate request itself (`RequestRefusal`) an ip/cp/kup with status rejection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from iotpki.core.audit.log import AuditRecord
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.profile import Profile
from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError, PolicyError
from iotpki.core.keyring import SecretSealer
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ra.endpoints import Endpoint, Endpoints
from iotpki.core.ra.enrollment import EnrollmentRequest, fingerprint
from iotpki.core.ra.key_delivery import KeyDelivery
from iotpki.core.ra.registration import Registration
from iotpki.core.ra.transaction_service import TransactionConflictError
from iotpki.core.ra.transactions import CMPTransaction, TransactionState
from iotpki.protocols.cmp.general import GeneralMessages
from iotpki.protocols.cmp.header import (
    CERT_REQUESTS,
    FIRST_MESSAGES,
    check_header,
    check_protector,
)
from iotpki.protocols.cmp.key_update import check_key_update
from iotpki.protocols.cmp.keygen import (
    CentralKey,
    deliver_central_key,
    prepare_central_key,
    wants_central_key,
)
from iotpki.protocols.cmp.mac_clients import MACClients
from iotpki.protocols.cmp.ports import CMPCore
from iotpki.protocols.cmp.protection import CMPProtection
from iotpki.protocols.cmp.refusals import (
    CLOCK_SKEW,
    FAILURE_FOR_REASON,
    CMPFailure,
    RequestRefusal,
)
from iotpki.protocols.cmp.revocation import Revocations, Revoker
from iotpki.protocols.cmp.templates import check_request, modifications, requested
from iotpki.protocols.cmp.throttle import MACThrottle
from iotpki.wire.cmp.messages import (
    CertConfirmation,
    CertRequests,
    ErrorReport,
    GeneralMessage,
    Header,
    P10Request,
    PKIMessage,
    RevocationRequest,
)
from iotpki.wire.cmp.protection import (
    MACParameters,
    MACProtection,
    ProtectionError,
    is_mac_protected,
    verify_signature_protection,
)
from iotpki.wire.cmp.responses import (
    ACCEPTED,
    GRANTED_WITH_MODS,
    REJECTION,
    WAITING,
    Answer,
    CertResult,
    Protection,
    Status,
    cert_rep_body,
    encode_response,
    error_body,
    genp_body,
    new_nonce,
    pkiconf_body,
    poll_rep_body,
    rp_body,
)
from iotpki.wire.cmp.transactions import cert_hash

log = logging.getLogger(__name__)
_ANSWER_KIND = {"ir": "ip", "cr": "cp", "kur": "kup", "p10cr": "cp"}
@dataclass(frozen=True)
class Client:
    """Who protected the request: a registration (MAC) or a certificate holder (signature)."""

    requester: str
    registration: Registration | None = None
    secret: bytes | None = None
    mac: MACParameters | None = None
    signer: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()
    # The signer's record if it was issued here, read once with its trust check: what the
    # request does next (renewal or not, the renewed profile, genm) is decided from it.
    record: CertificateRecord | None = None


@dataclass
class _Exchange:
    """One request being answered."""

    endpoint: Endpoint
    message: PKIMessage
    now: datetime
    client: Client | None = None
    address: str = "-"  # the client's network address (for the MAC throttle)
    # A certificate request's senderNonce is recorded in the issuing transaction; until
    # then (and on every refusal) it is still to be recorded.
    nonce_pending: bool = False

    @property
    def header(self) -> Header:
        return self.message.header

    @property
    def transaction_id(self) -> str:
        return (self.header.transaction_id or b"").hex()


class CMPServer:
    def __init__(self, core: CMPCore, general: GeneralMessages,
                 protection: CMPProtection, profiles: Mapping[str, Profile],
                 endpoints: Endpoints, sealer: SecretSealer | None, clock: Clock,
                 throttle: MACThrottle, skew: timedelta = CLOCK_SKEW,
                 check_after: int | None = None,
                 key_delivery: KeyDelivery | None = None) -> None:
        self._core = core
        self._transactions = core.transactions
        self._enrollment = core.enrollment
        self._revocation = core.revocation
        self._general = general
        self._protection = protection
        self._profiles = profiles
        self._endpoints = endpoints
        self._sealer = sealer
        self._clock = clock
        self._skew = skew
        self._check_after = check_after  # polling interval; None: the approval's own
        self._key_delivery = key_delivery  # central key generation (RFC 9483 §4.1.6)
        self._revocations = Revocations(core, profiles)
        self._mac_clients = MACClients(core.registrations, core.transactions, sealer, throttle)

    def handle(self, label: str, message: PKIMessage, address: str = "-") -> bytes:
        """The DER answer to one request; `NotFoundError` for an unknown label."""
        exchange = _Exchange(self._endpoints.get("cmp", label), message, self._clock.now(),
                             address=address)
        try:
            check_header(message.header, message.body_type, exchange.now, self._skew)
            exchange.client = self._authenticate(exchange)
            self._check_fresh(exchange)
            if exchange.client.registration is not None:  # spent secrets authenticate nothing
                self._mac_clients.check_usable(message, exchange.client.registration,
                                               exchange.now)
            return self._dispatch(exchange)
        except RequestRefusal as refusal:
            self._note_pending_nonce(exchange)
            self._refuse(exchange.endpoint, exchange.client, refusal, message.body_type,
                         exchange.transaction_id)
            status = Status(REJECTION, refusal.failure, refusal.detail)
            if message.body_type == "rr":
                return self._answer(exchange, rp_body(status))
            kind, cert_req_id = _ANSWER_KIND[message.body_type], _cert_req_id(message)
            return self._answer(exchange, cert_rep_body(kind, [CertResult(cert_req_id, status)]))
        except CMPFailure as failure:
            self._note_pending_nonce(exchange)
            self._refuse(exchange.endpoint, exchange.client, failure, message.body_type,
                         exchange.transaction_id)
            return self._answer(exchange, error_body(failure.failure, failure.detail))

    def malformed(self, label: str, detail: str) -> bytes:
        """RFC 9483 §3.6.4: an answer to bytes that are no PKIMessage (badDataFormat)."""
        endpoint = self._endpoints.get("cmp", label)
        failure = CMPFailure("badDataFormat", detail)
        self._refuse(endpoint, None, failure, "-", "-")
        return self._error_answer(endpoint, None, failure)

    def fault(self, label: str, message: PKIMessage | None, detail: str) -> bytes:
        """RFC 9483 §3.6.4: a fault of ours is still a CMP error message (systemFailure),
        never an HTTP 500; audited if the database lets us."""
        endpoint = self._endpoints.get("cmp", label)
        failure = CMPFailure("systemFailure", detail)
        body = message.body_type if message is not None else "-"
        transaction = ((message.header.transaction_id or b"").hex() if message is not None
                       else "-")
        try:
            self._refuse(endpoint, None, failure, body, transaction)
        except Exception:  # the database may be what failed; the client still gets an answer
            log.exception("CMP fault on endpoint %r could not be audited", label)
        return self._error_answer(endpoint, message.header if message is not None else None,
                                  failure)

    def _error_answer(self, endpoint: Endpoint, header: Header | None,
                      failure: CMPFailure) -> bytes:
        """Signed if the CA's protection key can sign; otherwise unprotected, systemUnavail
        (RFC 9483 §3.6.4 allows an unprotected error when protection is impossible)."""
        try:
            protection: Protection | None = self._protection.signer(endpoint.authority)
        except Exception:
            log.exception("no CMP protection for %s", endpoint.authority)
            protection = None
            failure = CMPFailure("systemUnavail", "the CMP protection certificate is "
                                                  "unavailable; try again later")
            try:
                self._refuse(endpoint, None, failure, "-", "-")
            except Exception:
                log.exception("CMP fault on endpoint %r could not be audited", endpoint.label)
        return encode_response(header, error_body(failure.failure, failure.detail), protection,
                               self._clock.now(), new_nonce())

    # -- authentication and freshness -------------------------------------------------------

    def _authenticate(self, exchange: _Exchange) -> Client:
        """RFC 9483 §3.5: protection first, then who the header says protected it, then the
        signer's trust and revocation; registrations are looked up only after that."""
        try:
            if is_mac_protected(exchange.message):
                check_protector(exchange.header, None)
                return self._by_mac(exchange)
            signer = verify_signature_protection(exchange.message)
        except ProtectionError as exc:
            raise CMPFailure(exc.failure, str(exc)) from exc
        check_protector(exchange.header, signer)
        body = exchange.message.body
        try:  # a certificate on hold may still send an rr (RFC 9483 §4.2; `_revoke` decides)
            record = self._core.presented.check(exchange.message.extra_certs,
                                                allow_held=isinstance(body, RevocationRequest))
        except PolicyError as exc:
            raise CMPFailure(FAILURE_FOR_REASON.get(exc.reason, "signerNotTrusted"),
                             exc.detail) from exc
        return Client(f"cmp:{fingerprint(signer)[:16]}", signer=signer,
                      chain=exchange.message.extra_certs, record=record)

    def _by_mac(self, exchange: _Exchange) -> Client:
        mac = self._mac_clients.authenticate(exchange.message, exchange.now, exchange.address)
        return Client(f"cmp:{mac.registration.id}", registration=mac.registration,
                      secret=mac.secret, mac=mac.parameters)

    def _check_fresh(self, exchange: _Exchange) -> None:
        """RFC 9483 §3.5: a senderNonce is used once; a repeated one is a replayed message.
        The first message of a transaction needs a transactionID never used before, also
        after its transaction ended (confirmed explicitly or implicitly)."""
        assert exchange.header.sender_nonce is not None  # check_header
        kind, existing = exchange.message.body_type, None
        if kind in CERT_REQUESTS:
            # Recorded by the issuing transaction (`_enroll`); a read here refuses a replay
            # early, the issuing transaction's insert one that races with its original. The
            # transactionID is read with it (one unit of work, issue 21).
            seen, existing = self._transactions.seen(exchange.header.sender_nonce,
                                                     exchange.transaction_id)
            fresh = exchange.nonce_pending = not seen
        else:
            fresh = self._transactions.note_nonce(exchange.header.sender_nonce, exchange.now)
        if not fresh:
            raise CMPFailure("badSenderNonce", "replayed message: this senderNonce was seen before")
        if kind in FIRST_MESSAGES and kind not in CERT_REQUESTS:
            existing = self._transactions.get(exchange.transaction_id)
        if existing is not None:
            raise CMPFailure("transactionIdInUse", "this transactionID is in use")

    def _note_pending_nonce(self, exchange: _Exchange) -> bool:
        """Record a certificate request's senderNonce outside the issuing transaction (a
        refusal, a request queued for approval); False if it was recorded meanwhile."""
        if not exchange.nonce_pending:
            return True
        exchange.nonce_pending = False
        assert exchange.header.sender_nonce is not None  # check_header
        return self._transactions.note_nonce(exchange.header.sender_nonce, exchange.now)

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, exchange: _Exchange) -> bytes:
        handlers: dict[str, Callable[[_Exchange], bytes]] = {
            "ir": self._enroll, "cr": self._enroll, "kur": self._enroll, "p10cr": self._enroll,
            "certConf": self._confirm, "pollReq": self._poll, "rr": self._revoke,
            "genm": self._general_message, "error": self._client_error,
        }
        handler = handlers.get(exchange.message.body_type)
        if handler is None:
            raise CMPFailure("badRequest", f"{exchange.message.body_type} is not served "
                                           f"(RFC 9483 profile)")
        return handler(exchange)

    def _answer(self, exchange: _Exchange, answer: Answer, nonce: bytes | None = None,
                implicit_confirm: bool = False,
                extra_certs: tuple[x509.Certificate, ...] = ()) -> bytes:
        return encode_response(exchange.header, answer, self._protection_for(exchange),
                               self._clock.now(), nonce or new_nonce(), implicit_confirm,
                               extra_certs)

    def _protection_for(self, exchange: _Exchange) -> Protection:
        client = exchange.client
        if client is not None and client.secret is not None and client.mac is not None:
            return MACProtection(client.secret, client.mac)  # RFC 9483 §3.2: as it came
        return self._protection.signer(exchange.endpoint.authority)

    # -- enrollment (RFC 9483 §4.1) --------------------------------------------------------

    def _enroll(self, exchange: _Exchange) -> bytes:
        request_der, cert_req_id = _certification_request(exchange.message)
        asked = requested(exchange.message)
        client = _client(exchange)
        request = EnrollmentRequest(
            csr=request_der, requester=client.requester, client_chain=client.chain,
            possession="cmp-signature" if client.signer is not None else None,
            registration_id=client.registration.id if client.registration else None,
            secret=client.secret.decode() if client.secret is not None else None,
            authority=exchange.endpoint.authority, profile=exchange.endpoint.profile)
        method = self._method(exchange, client, request)
        profile: str | None = exchange.endpoint.profile
        if method == exchange.endpoint.renewal and client.signer is not None:
            record = client.record
            profile = record.profile if record is not None else None  # the renewed one's
        check_request(asked, self._profiles.get(profile) if profile is not None else None)
        if exchange.message.body_type == "kur":
            assert client.signer is not None  # _method
            check_key_update(asked, client.signer)
            self._check_one_open_update(client.signer)
        central = None
        if client.signer is not None or wants_central_key(exchange.message):
            # Sign-able answer first: never issue a certificate we could not hand over.
            self._protection.signer(exchange.endpoint.authority)
        if wants_central_key(exchange.message):
            central = prepare_central_key(self._key_delivery, exchange.message,
                                          exchange.endpoint.profile, method, client.secret,
                                          client.signer)
            request = replace(request, csr=central.csr)
        if method == exchange.endpoint.renewal:
            request = replace(request, profile=None)  # the current certificate's profile
        nonce, body_type = new_nonce(), exchange.message.body_type
        assert exchange.header.sender_nonce is not None  # check_header
        attached = self._transactions.attached(
            exchange.header.sender_nonce, exchange.now,
            lambda outcome: self._transaction_of(exchange, outcome, nonce, cert_req_id,
                                                 body_type))
        try:
            outcome = self._enrollment.enroll(request, method, attached)
        except TransactionConflictError as conflict:
            exchange.nonce_pending = False  # nothing was written; a replay's nonce is known
            if conflict.what == "nonce":
                raise CMPFailure("badSenderNonce", "replayed message: this senderNonce was "
                                                   "seen before") from conflict
            raise CMPFailure("transactionIdInUse", "this transactionID is in use") from conflict
        if attached.written:
            exchange.nonce_pending = False
        elif not self._note_pending_nonce(exchange) and not isinstance(outcome, Rejected):
            raise CMPFailure("badSenderNonce", "replayed message: this senderNonce was seen before")
        return self._certificate_answer(exchange, outcome, cert_req_id, body_type, central,
                                        asked, nonce, opened=attached.written)

    def _transaction_of(self, exchange: _Exchange, outcome: Issued | Rejected, nonce: bytes,
                        cert_req_id: int, body_type: str) -> CMPTransaction | None:
        """The transaction an issued certificate opens, stored with it: confirmed already
        with implicitConfirm (the transactionID stays used, RFC 9483 §3.5), else awaiting
        certConf (§4.1.1). A refusal opens none."""
        if not isinstance(outcome, Issued):
            return None
        state = (TransactionState.CONFIRMED if exchange.header.implicit_confirm
                 else TransactionState.AWAITING_CONFIRMATION)
        return self._new_transaction(exchange, state, nonce, cert_req_id, body_type,
                                     certificate=outcome.record.fingerprint)

    def _method(self, exchange: _Exchange, client: Client,
                request: EnrollmentRequest) -> MethodName:
        """Which enrollment method this request uses: renewal for a kur, or a cr signed with
        a certificate of this CA; else the endpoint's first method that applies (the rule
        every protocol shares, `EnrollmentService.select`)."""
        endpoint, kind = exchange.endpoint, exchange.message.body_type
        if kind == "kur":  # RFC 9483 §4.1.3: signed with the certificate to be updated
            if client.signer is None:
                raise CMPFailure("notAuthorized", "kur must be signed with the current certificate")
            return endpoint.renewal
        if kind in ("cr", "p10cr") and client.record is not None and (
                client.record.authority == endpoint.authority):
            return endpoint.renewal  # RFC 9483 §4.1.2: a cr by the current certificate
        method = self._enrollment.select(endpoint.methods, request)
        if method is None:
            raise CMPFailure("notAuthorized", f"CMP endpoint {endpoint.label!r} accepts "
                                              f"{', '.join(endpoint.methods)} only")
        return method

    def _check_one_open_update(self, certificate: x509.Certificate) -> None:
        """RFC 9483 §4.1.3: one key update per certificate at a time. While the new
        certificate of a kur awaits its certConf, a second kur signed by the same certificate
        is a duplicate request (RFC 9810 §5.2.3 duplicateCertReq); once that transaction is
        confirmed, rejected or expired, the certificate may ask again."""
        open_update = self._transactions.unconfirmed_update_of(certificate)
        if open_update is not None:
            raise RequestRefusal("duplicateCertReq", f"RFC 9483 §4.1.3: a key update of this "
                                                     f"certificate (transaction "
                                                     f"{open_update.transaction_id}) awaits its "
                                                     f"certConf")

    def _certificate_answer(self, exchange: _Exchange, outcome: Issued | Pending | Rejected,
                            cert_req_id: int, body_type: str,
                            central: CentralKey | None = None, asked: Any = None,
                            nonce: bytes | None = None, opened: bool = False) -> bytes:
        """`opened`: the transaction was stored with the certificate (`_enroll`)."""
        kind = _ANSWER_KIND[body_type]
        if isinstance(outcome, Rejected):
            status = Status(REJECTION, FAILURE_FOR_REASON[outcome.reason],
                            outcome.detail)
            return self._answer(exchange, cert_rep_body(kind, [CertResult(cert_req_id, status)]))
        nonce = nonce or new_nonce()
        if isinstance(outcome, Pending):
            self._open(exchange, TransactionState.AWAITING_APPROVAL, nonce, cert_req_id,
                       body_type, pending=outcome.request_id)
            return self._answer(exchange, cert_rep_body(
                kind, [CertResult(cert_req_id, Status(WAITING))]), nonce)
        implicit = exchange.header.implicit_confirm
        if not opened:  # kept also when confirmed implicitly: the transactionID stays used
            self._open(exchange, TransactionState.CONFIRMED if implicit
                       else TransactionState.AWAITING_CONFIRMATION, nonce, cert_req_id,
                       body_type, certificate=outcome.record.fingerprint)
        client = _client(exchange)
        ca_pubs = (outcome.chain[-1],) if client.secret is not None else ()  # §4.1.1 caPubs
        private_key = None
        if central is not None and self._key_delivery is not None:  # RFC 9483 §4.1.6
            private_key = deliver_central_key(self._key_delivery, central, outcome,
                                              client.requester)
        # RFC 9810 §5.2.3: what differs from the request is told, never silently accepted.
        changes = modifications(asked, outcome.certificate)
        status = (Status(GRANTED_WITH_MODS, None, "; ".join(changes)) if changes
                  else Status(ACCEPTED))
        answer = cert_rep_body(kind, [CertResult(cert_req_id, status, outcome.certificate,
                                                 private_key)], ca_pubs)
        return self._answer(exchange, answer, nonce, implicit, outcome.chain)

    def _open(self, exchange: _Exchange, state: TransactionState, nonce: bytes,
              cert_req_id: int, body_type: str, certificate: str | None = None,
              pending: str | None = None) -> None:
        transaction = self._new_transaction(exchange, state, nonce, cert_req_id, body_type,
                                            certificate, pending)
        if not self._transactions.open(transaction):
            raise CMPFailure("transactionIdInUse", "this transactionID is in use")

    @staticmethod
    def _new_transaction(exchange: _Exchange, state: TransactionState, nonce: bytes,
                         cert_req_id: int, body_type: str, certificate: str | None = None,
                         pending: str | None = None) -> CMPTransaction:
        client = _client(exchange)
        return CMPTransaction(
            exchange.transaction_id, state, body_type, nonce, cert_req_id,
            exchange.endpoint.authority, exchange.now, exchange.now,
            registration=client.registration.id if client.registration else None,
            signer=client.signer, certificate=certificate, pending_request=pending)

    # -- confirmation and polling (RFC 9483 §4.1.1, §4.4) -----------------------------------

    def _transaction(self, exchange: _Exchange, expected: TransactionState) -> CMPTransaction:
        transaction = self._transactions.get(exchange.transaction_id)
        if transaction is None or transaction.state is not expected:
            state = transaction.state.value if transaction is not None else "unknown"
            if (transaction is not None and transaction.state is TransactionState.CONFIRMED
                    and exchange.message.body_type == "certConf"):
                raise CMPFailure("certConfirmed", "RFC 9810 §5.2.3: the certificate was "
                                                  "confirmed already")
            raise CMPFailure("badRequest", f"no transaction awaiting this message ({state})")
        if exchange.header.recip_nonce != transaction.our_nonce:
            raise CMPFailure("badRecipientNonce", "recipNonce is not our last senderNonce")
        client = _client(exchange)
        if (transaction.registration is not None) != (client.secret is not None):
            raise CMPFailure("wrongIntegrity", "RFC 9483 §4.1.1: a message of a transaction "
                                               "is protected as its request was (MAC or "
                                               "signature)")
        same = ((transaction.registration is not None and client.registration is not None
                 and transaction.registration == client.registration.id)
                or (transaction.signer is not None and client.signer == transaction.signer))
        if not same:
            raise CMPFailure("notAuthorized", "the transaction belongs to another client")
        return transaction

    def _confirm(self, exchange: _Exchange) -> bytes:
        transaction = self._transaction(exchange, TransactionState.AWAITING_CONFIRMATION)
        body = exchange.message.body
        if not isinstance(body, tuple) or len(body) != 1:
            raise CMPFailure("badRequest", "RFC 9483 §4.1.1: one CertStatus per certConf")
        status: CertConfirmation = body[0]
        if status.status not in (None, ACCEPTED, REJECTION) or (
                status.status == ACCEPTED and status.has_fail_info):
            raise CMPFailure("badRequest", "RFC 9483 §4.1.1: a CertStatus is accepted (without "
                                           "failInfo) or rejection")
        record = self._by_fingerprint(transaction.certificate or "")
        if record is None or status.cert_req_id != transaction.cert_req_id:
            raise CMPFailure("badCertId", "certConf names no certificate of this transaction")
        if cert_hash(record.certificate, status.hash_algorithm) != status.cert_hash:
            raise CMPFailure("badCertId", "certHash does not match the issued certificate")
        state = TransactionState.CONFIRMED if status.accepted else TransactionState.REJECTED
        moved = self._transactions.move(
            replace(transaction, state=state, updated_at=exchange.now),
            TransactionState.AWAITING_CONFIRMATION, AuditRecord(
                "cmp.certificate.confirm", "success" if status.accepted else "refused",
                _client(exchange).requester, f"{record.authority}:{record.serial_hex}",
                {"transaction": transaction.transaction_id, "state": state.value}))
        if not moved:
            raise CMPFailure("badRequest", "the transaction was confirmed already")
        if not status.accepted:  # RFC 9483 §4.1.1: a rejected certificate must not be used
            self._revocation.revoke(record.authority, record.serial,
                                    x509.ReasonFlags.cessation_of_operation,
                                    _client(exchange).requester)
        return self._answer(exchange, pkiconf_body())

    def _poll(self, exchange: _Exchange) -> bytes:
        transaction = self._transaction(exchange, TransactionState.AWAITING_APPROVAL)
        assert transaction.pending_request is not None
        outcome = self._enrollment.approval.poll(transaction.pending_request)
        if isinstance(outcome, Pending):
            nonce = new_nonce()
            self._transactions.move(replace(transaction, our_nonce=nonce,
                                            updated_at=exchange.now), transaction.state)
            check_after = min(outcome.retry_after_seconds,
                              self._check_after or outcome.retry_after_seconds)
            return self._answer(exchange, poll_rep_body(transaction.cert_req_id, check_after),
                                nonce)
        return self._certificate_answer(exchange, outcome, transaction.cert_req_id,
                                        transaction.body_type)

    # -- revocation, general messages, errors (RFC 9483 §4.2, §4.3, §3.6.4) ----------------

    def _revoke(self, exchange: _Exchange) -> bytes:
        client, body = _client(exchange), exchange.message.body
        assert isinstance(body, RevocationRequest)
        self._revocations.serve(body, Revoker(client.requester, client.signer,
                                              client.registration))
        return self._answer(exchange, rp_body(Status(ACCEPTED)))

    def _general_message(self, exchange: _Exchange) -> bytes:
        client, body = _client(exchange), exchange.message.body
        assert isinstance(body, GeneralMessage)
        if client.signer is not None and (client.record is None
                                          or client.record.status is not CertificateStatus.GOOD):
            raise CMPFailure("notAuthorized", "genm must be signed with a good certificate "
                                              "issued here, or MAC-protected")
        try:
            authority = self._core.authorities.get(exchange.endpoint.authority)
        except NotFoundError as exc:
            raise CMPFailure("systemUnavail", "the endpoint's authority does not exist") from exc
        infos = self._general.answer(body.info_types, authority,
                                     self._profiles.get(exchange.endpoint.profile), body.values)
        return self._answer(exchange, genp_body(infos))

    def _by_fingerprint(self, certificate_fingerprint: str) -> CertificateRecord | None:
        try:
            return self._core.certificates.get_by_fingerprint(certificate_fingerprint)
        except NotFoundError:
            return None

    def _client_error(self, exchange: _Exchange) -> bytes:
        body = exchange.message.body
        detail = body.detail if isinstance(body, ErrorReport) else ""
        self._transactions.record(exchange.now, AuditRecord(
            "cmp.client-error", "success", _client(exchange).requester,
            exchange.endpoint.authority,
            {"transaction": exchange.transaction_id, "detail": detail}))
        return self._answer(exchange, pkiconf_body())  # RFC 9483 §3.6.4

    def _refuse(self, endpoint: Endpoint, client: Client | None, failure: CMPFailure,
                body_type: str, transaction: str) -> None:
        """Refusals before the core decides (protection, nonces, transactions) are audited
        here; the core audits its own (enrollment, issuance)."""
        self._transactions.record(self._clock.now(), AuditRecord(
            "cmp.request", "refused", client.requester if client else "cmp:unauthenticated",
            endpoint.authority, {"failure": failure.failure, "detail": failure.detail,
                                 "body": body_type, "transaction": transaction,
                                 "endpoint": endpoint.label}))


def _client(exchange: _Exchange) -> Client:
    assert exchange.client is not None  # authenticated before dispatch
    return exchange.client


def _cert_req_id(message: PKIMessage) -> int:
    body = message.body
    if isinstance(body, CertRequests) and len(body.requests) == 1:
        return body.requests[0].cert_req_id
    return -1 if isinstance(body, P10Request) else 0


def _certification_request(message: PKIMessage) -> tuple[bytes, int]:
    body = message.body
    if isinstance(body, P10Request):
        return body.csr, -1  # RFC 9483 §4.1.4: certReqId -1 in the answer
    assert isinstance(body, CertRequests)
    if len(body.requests) != 1:
        raise CMPFailure("badRequest", "RFC 9483 §4.1.1: exactly one certificate request")
    request = body.requests[0]
    if request.cert_req_id != 0:
        raise CMPFailure("badRequest", "RFC 9483 §4.1.1: certReqId must be 0")
    return request.der, 0
