"""The SCEP server (RFC 8894): GetCACaps, GetCACert and PKIOperation behind one labelled
endpoint; the label selects the CA, the profile and the enrollment methods (as for EST
and CMP, `core.ra.endpoints`).

- §3.5.2 GetCACaps: what is really supported (POSTPKIOperation, Renewal, SHA-256, SHA-512,
  AES, SCEPStandard; DES3 and SHA-1 only on an endpoint with `legacy_algorithms`).
- §4.2 GetCACert: the endpoint's RA certificate and the CA chain, certs-only
  (`application/x-x509-ca-ra-cert`).
- §3.3 PKIOperation: PKCSReq (challengePassword: a registration's one-time secret or
  reusable credential, `<registration id or reference>:<secret>`; a request signed by an
  existing certificate may use the previous-stage method), RenewalReq (signed by the
  current certificate: the endpoint's renewal method), CertPoll (a pending manual
  approval), GetCert, GetCRL. Every answer is a CertRep (§3.3.2) signed by the RA key:
  SUCCESS with the pkcsPKIEnvelope encrypted to the requester's signing certificate,
  FAILURE with a failInfo, PENDING.
- §3.2.1.5: senderNonce seen before is a replay (FAILURE badRequest); recipientNonce
  echoes the request's senderNonce, transactionID is echoed.

A message that cannot be answered with a CertRep (not a SignedData, no transactionID or
senderNonce) is `BadMessageError`: HTTP 400. Every refusal made here is audited through
the core (`EndpointEnrollment.refuse`); refusals of the core are audited by the core.
The SCEP transactions that await an operator and the seen nonces are kept by the core's
`TransactionService` (the CMP transaction tables), under keys of their own. Like the EST and
CMP adapters, this one reaches the core through narrow ports only, never a unit of work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from iotpki.core.audit.bounds import bounded
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import AttachedWrites
from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.service_certificates import ServiceSigner
from iotpki.core.clock import Clock
from iotpki.core.errors import NotFoundError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.outcomes import Issued, Pending, Rejected
from iotpki.core.ra.endpoint_enrollment import Outcome, Refusal
from iotpki.core.ra.endpoints import Endpoint
from iotpki.core.ra.enrollment import EnrollmentRequest, fingerprint
from iotpki.core.ra.transaction_service import RequestRecord, TransactionConflictError
from iotpki.core.ra.transactions import CMPTransaction, TransactionState
from iotpki.core.revocation.status import PublishedCRL
from iotpki.protocols.scep.refusals import FAIL_INFO_FOR_REASON, REASON_FOR_FAIL_INFO
from iotpki.wire.channel_binding import challenge_password
from iotpki.wire.errors import DecodeError
from iotpki.wire.scep.attributes import NONCE_SIZE, FailInfo, MessageType, PKIStatus
from iotpki.wire.scep.content import (
    decode_csr_content,
    decode_issuer_and_serial,
    decode_issuer_and_subject,
)
from iotpki.wire.scep.envelope import AES128, ContentCipher, encode_envelope, open_envelope
from iotpki.wire.scep.failure import SCEPFailure, WrongRecipientError
from iotpki.wire.scep.message import (
    DIGESTS,
    Attributes,
    PKIMessage,
    decode_pki_message,
    encode_degenerate,
    encode_pki_message,
    verify_pki_message,
)

PROTOCOL = "scep"
ACTOR = "scep"
REQUESTER_LIMIT = 160


class EnrollmentEndpoints(Protocol):
    """What SCEP needs from the core (`iotpki.core.ra.endpoint_enrollment.EndpointEnrollment`)."""

    def endpoint(self, protocol: str, label: str) -> Endpoint: ...

    def ca_certificates(self, endpoint: Endpoint) -> tuple[x509.Certificate, ...]: ...

    def client_chain(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]: ...

    def enroll(self, endpoint: Endpoint, request: EnrollmentRequest, challenge: bool = False,
               attached: AttachedWrites | None = None) -> Outcome: ...

    def renew(self, endpoint: Endpoint, request: EnrollmentRequest,
              attached: AttachedWrites | None = None) -> Outcome: ...

    def refuse(self, refusal: Refusal) -> None: ...


class RASigners(Protocol):
    """`iotpki.core.ca.service_certificates.ServiceCertificates`."""

    def current(self, owner: str, purpose: Purpose, issuer: str | None = None,
                actor: str | None = None) -> ServiceSigner: ...


class Transactions(Protocol):
    """Seen nonces and pending transactions (`core.ra.transaction_service.TransactionService`)."""

    def note_nonce(self, nonce: bytes, at: datetime) -> bool: ...

    def nonce_seen(self, nonce: bytes) -> bool: ...

    def attached(self, nonce: bytes, at: datetime,
                 transaction: Callable[[Issued | Rejected], CMPTransaction | None]
                 ) -> RequestRecord: ...

    def get(self, transaction_id: str) -> CMPTransaction | None: ...

    def open(self, transaction: CMPTransaction) -> bool: ...


class Certificates(Protocol):
    """Certificates issued here (`core.ca.directory.CertificateDirectory`); `NotFoundError`
    for one that was not."""

    def get(self, authority: str, serial: int) -> CertificateRecord: ...


class BadMessageError(Exception):
    """No CertRep can be formed: answered with HTTP 400 (audited)."""


class _Refused(Exception):
    """A message this adapter refuses before (or instead of) the core: CertRep FAILURE."""

    def __init__(self, fail_info: FailInfo, reason: R, detail: str) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Answer:
    status: PKIStatus
    fail_info: FailInfo | None = None
    detail: str | None = None
    payload: bytes | None = None  # the degenerate SignedData to envelope (SUCCESS)


@dataclass(frozen=True)
class _Call:
    endpoint: Endpoint
    message: PKIMessage
    requester: str
    address: str


def ra_owner(endpoint: Endpoint) -> str:
    """The owner of an endpoint's RA certificate (`core.ca.service_certificates`)."""
    return f"scep:{endpoint.label}"


class SCEPServer:
    def __init__(self, endpoints: EnrollmentEndpoints, signers: RASigners,
                 poll: Callable[[str], Outcome], crl: Callable[[str], PublishedCRL],
                 transactions: Transactions, certificates: Certificates, clock: Clock) -> None:
        self._endpoints = endpoints
        self._signers = signers
        self._poll = poll
        self._crl = crl
        self._transactions = transactions
        self._certificates = certificates
        self._clock = clock

    def endpoint(self, label: str) -> Endpoint:
        """Raise `NotFoundError` for a label no SCEP endpoint declares."""
        return self._endpoints.endpoint(PROTOCOL, label)

    # -- §3.5.2, §4.2 --------------------------------------------------------------------------

    @staticmethod
    def capabilities(endpoint: Endpoint) -> str:
        caps = ["AES", "POSTPKIOperation", "Renewal", "SCEPStandard", "SHA-256", "SHA-512"]
        if endpoint.legacy_algorithms:
            caps += ["DES3", "SHA-1"]
        return "\n".join(sorted(caps)) + "\n"

    def ra_signer(self, endpoint: Endpoint) -> ServiceSigner:
        return self._signers.current(ra_owner(endpoint), Purpose.SCEP_RA,
                                     issuer=endpoint.authority, actor=ACTOR)

    def ca_certificates(self, endpoint: Endpoint) -> bytes:
        """§4.2.1.2: the RA certificate first, then the CA and its issuers, certs-only."""
        ra = self.ra_signer(endpoint)
        return encode_degenerate([ra.certificate, *self._endpoints.ca_certificates(endpoint)])

    # -- §3.3: PKIOperation --------------------------------------------------------------------

    def refuse(self, endpoint: Endpoint, address: str, reason: R, detail: str,
               operation: str = "PKIOperation") -> None:
        self._endpoints.refuse(Refusal(PROTOCOL, endpoint.label, f"scep:{address}", reason,
                                       detail, operation))

    def operation(self, endpoint: Endpoint, body: bytes, address: str) -> bytes:
        """The CertRep answering `body`; `BadMessageError` when none can be formed."""
        try:
            message = decode_pki_message(body)
        except DecodeError as exc:
            self.refuse(endpoint, address, R.MALFORMED_REQUEST, str(exc))
            raise BadMessageError(str(exc)) from exc
        call = _Call(endpoint, message, _requester(message, address), address)
        ra = self.ra_signer(endpoint)
        cipher = AES128
        try:
            cipher, content = self._open(call, ra)
            answer = self._dispatch(call, content)
        except (_Refused, SCEPFailure, DecodeError) as exc:
            refused = _refused(exc)
            self._endpoints.refuse(Refusal(PROTOCOL, endpoint.label, call.requester,
                                           refused.reason, refused.detail,
                                           _operation(message.message_type)))
            answer = _Answer(PKIStatus.FAILURE, refused.fail_info, refused.detail)
        return self._cert_rep(call, ra, answer, cipher)

    def _open(self, call: _Call, ra: ServiceSigner) -> tuple[ContentCipher, bytes]:
        message, endpoint = call.message, call.endpoint
        verify_pki_message(message, allow_sha1=endpoint.legacy_algorithms)
        if not 8 <= len(message.sender_nonce) <= 4 * NONCE_SIZE:
            raise _Refused(FailInfo.BAD_REQUEST, R.MALFORMED_REQUEST,
                           "senderNonce must be 16 octets (RFC 8894 §3.2.1.5)")
        if self._transactions.nonce_seen(_nonce_key(message)):
            raise _replayed()
        assert message.signer is not None  # verify_pki_message
        if not isinstance(message.signer.public_key(), rsa.RSAPublicKey):
            raise _Refused(FailInfo.BAD_ALG, R.UNSUPPORTED_KEY, "the reply is encrypted to the "
                           "signer's certificate: it must hold an RSA key (RFC 8894 §3.2.2)")
        if message.content is None:
            raise _Refused(FailInfo.BAD_REQUEST, R.MALFORMED_REQUEST,
                           "the request carries no pkcsPKIEnvelope")
        opened = open_envelope(message.content, ra.certificate, ra.key,
                               allow_legacy=endpoint.legacy_algorithms)
        return opened.cipher, opened.content

    def _note_nonce(self, message: PKIMessage) -> None:
        """§3.2.1.5: a message that issues nothing records its senderNonce on its own."""
        if not self._transactions.note_nonce(_nonce_key(message), self._clock.now()):
            raise _replayed()

    def _dispatch(self, call: _Call, content: bytes) -> _Answer:
        kind = call.message.message_type
        if kind in (MessageType.PKCS_REQ, MessageType.RENEWAL_REQ):
            return self._enroll(call, content, renewal=kind == MessageType.RENEWAL_REQ)
        self._note_nonce(call.message)
        if kind == MessageType.CERT_POLL:
            return self._cert_poll(call, content)
        if kind == MessageType.GET_CERT:
            return self._get_cert(call, content)
        if kind == MessageType.GET_CRL:
            return self._get_crl(call, content)
        raise _Refused(FailInfo.BAD_REQUEST, R.MALFORMED_REQUEST,
                       f"messageType {kind} is not a request this server takes")

    def _enroll(self, call: _Call, content: bytes, renewal: bool) -> _Answer:
        """The senderNonce is written in the transaction that stores the certificate (one
        write transaction per request); on its own when nothing is issued."""
        record = self._transactions.attached(_nonce_key(call.message), self._clock.now(),
                                             lambda _outcome: None)
        try:
            outcome = self._enrollment(call, content, renewal, record)
        except TransactionConflictError as exc:  # a replay raced its original
            raise _replayed() from exc
        finally:
            if not record.written:
                self._transactions.note_nonce(_nonce_key(call.message), self._clock.now())
        if isinstance(outcome, Pending):
            self._keep_pending(call, outcome)
        return _answer(outcome)

    def _enrollment(self, call: _Call, content: bytes, renewal: bool,
                    record: RequestRecord) -> Outcome:
        csr = decode_csr_content(content)
        registration, secret = _challenge(challenge_password(csr))
        signer = call.message.signer
        assert signer is not None
        # §3.3.1: signed by a self-signed certificate, or by an existing one (renewal, or a
        # previous-stage identity); the verified signature proves possession of its key.
        chain = () if signer.issuer == signer.subject else self._endpoints.client_chain(signer)
        request = EnrollmentRequest(
            csr=csr, requester=call.requester, client_chain=chain,
            possession="scep-signature" if chain else None,
            registration_id=registration, secret=secret, client=call.address)
        if renewal:
            return self._endpoints.renew(call.endpoint, request, attached=record)
        return self._endpoints.enroll(call.endpoint, request, attached=record)

    def _keep_pending(self, call: _Call, pending: Pending) -> None:
        now = self._clock.now()
        transaction = CMPTransaction(
            _transaction_key(call), TransactionState.AWAITING_APPROVAL, "scep", b"", 0,
            call.endpoint.authority, now, now, signer=call.message.signer,
            pending_request=pending.request_id)
        existing = self._transactions.get(transaction.transaction_id)
        if existing is not None:  # the request sent again while it waits
            transaction = replace(transaction, created_at=existing.created_at)
        self._transactions.open(transaction)

    def _cert_poll(self, call: _Call, content: bytes) -> _Answer:
        """§3.3.3: the transactionID names the pending request; only its signer polls."""
        decode_issuer_and_subject(content)
        transaction = self._transactions.get(_transaction_key(call))
        if transaction is None or transaction.pending_request is None:
            raise _Refused(FailInfo.BAD_CERT_ID, R.NOT_REGISTERED,
                           "no pending request has this transactionID")
        signer = call.message.signer
        if transaction.signer is None or signer is None or (
                fingerprint(transaction.signer) != fingerprint(signer)):
            raise _Refused(FailInfo.BAD_MESSAGE_CHECK, R.POSSESSION_NOT_PROVEN,
                           "CertPoll must be signed by the certificate that signed the request")
        try:
            return _answer(self._poll(transaction.pending_request))
        except NotFoundError as exc:
            raise _Refused(FailInfo.BAD_CERT_ID, R.NOT_REGISTERED, str(exc)) from exc

    def _ca(self, endpoint: Endpoint, issuer: bytes) -> x509.Certificate:
        ca = self._endpoints.ca_certificates(endpoint)[0]
        if ca.subject.public_bytes() != issuer:
            raise _Refused(FailInfo.BAD_CERT_ID, R.NOT_REGISTERED,
                           "the issuer is not this endpoint's CA")
        return ca

    def _get_cert(self, call: _Call, content: bytes) -> _Answer:
        """§3.3.4: a certificate of this endpoint's CA, by issuer and serial number."""
        wanted = decode_issuer_and_serial(content)
        self._ca(call.endpoint, wanted.issuer)
        try:
            record = self._certificates.get(call.endpoint.authority, wanted.serial)
        except NotFoundError as exc:
            raise _Refused(FailInfo.BAD_CERT_ID, R.NOT_REGISTERED,
                           f"no certificate {wanted.serial:x} from this CA") from exc
        return _Answer(PKIStatus.SUCCESS, payload=encode_degenerate([record.certificate]))

    def _get_crl(self, call: _Call, content: bytes) -> _Answer:
        """§3.3.4: the current full CRL of the endpoint's CA."""
        wanted = decode_issuer_and_serial(content)
        self._ca(call.endpoint, wanted.issuer)
        try:
            crl = self._crl(call.endpoint.authority)
        except NotFoundError as exc:
            raise _Refused(FailInfo.BAD_CERT_ID, R.NOT_REGISTERED, str(exc)) from exc
        return _Answer(PKIStatus.SUCCESS, payload=encode_degenerate([], [crl.der]))

    # -- §3.3.2: CertRep -----------------------------------------------------------------------

    def _cert_rep(self, call: _Call, ra: ServiceSigner, answer: _Answer,
                  cipher: ContentCipher) -> bytes:
        message = call.message
        envelope = None
        if answer.payload is not None and message.signer is not None:
            envelope = encode_envelope(answer.payload, message.signer, cipher)
        digest = DIGESTS.get(message.digest_algorithm, hashes.SHA256)
        if digest is hashes.SHA1:
            digest = hashes.SHA256
        attributes = Attributes(
            MessageType.CERT_REP, message.transaction_id, os.urandom(NONCE_SIZE),
            recipient_nonce=message.sender_nonce, pki_status=answer.status,
            fail_info=answer.fail_info,
            fail_info_text=answer.detail if answer.status is PKIStatus.FAILURE else None)
        return encode_pki_message(attributes, envelope, ra.key, ra.certificate,
                                  [ra.certificate], self._clock.now(), digest())


def _answer(outcome: Outcome) -> _Answer:
    if isinstance(outcome, Issued):
        return _Answer(PKIStatus.SUCCESS, payload=encode_degenerate([outcome.certificate]))
    if isinstance(outcome, Pending):
        return _Answer(PKIStatus.PENDING)
    return _Answer(PKIStatus.FAILURE, FAIL_INFO_FOR_REASON[outcome.reason],
                   f"{outcome.reason.value}: {outcome.detail}")


def _refused(exc: Exception) -> _Refused:
    if isinstance(exc, _Refused):
        return exc
    if isinstance(exc, SCEPFailure):
        reason = (R.WRONG_RECIPIENT if isinstance(exc, WrongRecipientError)
                  else REASON_FOR_FAIL_INFO[exc.fail_info])
        return _Refused(exc.fail_info, reason, exc.detail)
    return _Refused(FailInfo.BAD_REQUEST, R.MALFORMED_REQUEST, str(exc))


def _nonce_key(message: PKIMessage) -> bytes:
    """The stored form of a senderNonce: bounded, and apart from CMP's nonces."""
    return hashlib.sha256(b"scep:" + message.sender_nonce).digest()


def _replayed() -> _Refused:
    return _Refused(FailInfo.BAD_REQUEST, R.REPLAYED,
                    "replayed message: this senderNonce was seen before")


def _challenge(password: str | None) -> tuple[str | None, str | None]:
    """`<registration id or reference>:<secret>` (docs/scep.md); anything else names no
    registration, and the one-time-secret method says what is missing."""
    if password is None:
        return None, None
    registration, colon, secret = password.partition(":")
    if not colon or not registration:
        return None, password
    return bounded(registration, 128), secret


def _transaction_key(call: _Call) -> str:
    """The stored key of a SCEP transaction: per endpoint, bounded whatever the client sent."""
    text = f"{call.endpoint.label}\n{call.message.transaction_id}".encode()
    return "scep:" + hashlib.sha256(text).hexdigest()


def _requester(message: PKIMessage, address: str) -> str:
    try:
        name = message.signer.subject.rfc4514_string() if message.signer is not None else "-"
    except ValueError:  # a malformed name, parsed lazily: refused later as badMessageCheck
        name = "?"
    return bounded(f"scep:{name}@{address}", REQUESTER_LIMIT)


def _operation(message_type: int) -> str:
    try:
        return MessageType(message_type).name
    except ValueError:
        return f"messageType {message_type}"
