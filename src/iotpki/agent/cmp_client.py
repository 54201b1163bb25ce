"""CMP client of the Lightweight CMP profile (RFC 9483) on the shared codecs of
`iotpki.wire.cmp` (the server's own message classes), over HTTP (RFC 9811).

- §4.1.1 ir: MAC-protected with the registration's one-time secret (PasswordBasedMac,
  senderKID = registration id), or signed with the previous-stage key (its chain in
  extraCerts). §4.1.3 kur: signed with the current key. implicitConfirm is asked for; if
  the server does not grant it, the certificate is confirmed with certConf (§4.1.1).
- §3.1/§3.5 checks on every answer: same transactionID, recipNonce = our senderNonce.
- §3.2: a MAC-protected request expects a MAC-protected answer under the same secret; a
  signed one a signature whose certificate validates to a pinned root. The root of caPubs
  (§4.1.1) or extraCerts is accepted only if its fingerprint is pinned.
- §4.3.1 genm caCerts: the CA certificates, to notice a CA rollover.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from iotpki.agent.credentials import Credentials
from iotpki.agent.errors import PendingError, RefusedError, TransportError, UntrustedAnswerError
from iotpki.agent.keystore import Identity, PendingKey
from iotpki.agent.transport import HTTPTransport, Transport
from iotpki.agent.trust import Trust
from iotpki.wire.cmp.messages import (
    CertResponses,
    ErrorReport,
    GeneralResponse,
    PKIMessage,
    decode_pki_message,
)
from iotpki.wire.cmp.protection import (
    MACProtection,
    PBMParameters,
    ProtectionError,
    is_mac_protected,
    verify_mac,
    verify_signature_protection,
)
from iotpki.wire.cmp.requests import (
    KeySignature,
    RequestHeader,
    RequestProtection,
    cert_conf_body,
    encode_cert_req_msg,
    encode_request,
    genm_body,
    subject_key_id,
)
from iotpki.wire.cmp.transactions import cert_hash
from iotpki.wire.der import SEQUENCE, children, read_tlv, tlv
from iotpki.wire.errors import DecodeError

MEDIA_TYPE = "application/pkixcmp"
CA_CERTS = "1.3.6.1.5.5.7.4.17"  # id-it-caCerts (RFC 9483 §4.3.1)
# RFC 9481 §6.1.1: SHA-256 as OWF, HMAC-SHA256 as MAC, 1,000 iterations or more.
PBM_OWF, PBM_MAC, PBM_ITERATIONS = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9", 1000
ACCEPTED, GRANTED_WITH_MODS, WAITING = 0, 1, 3

Clock = Callable[[], datetime]


@dataclass
class _Signer:
    """How one transaction is protected and how its answers are checked."""

    protection: RequestProtection
    header: RequestHeader
    extra_certs: tuple[x509.Certificate, ...] = ()
    secret: bytes | None = None


class CMPClient:
    def __init__(self, url: str, trust: Trust, clock: Clock,
                 transport: Transport | None = None) -> None:
        self._url = url
        self._trust = trust
        self._clock = clock
        self._transport = transport or HTTPTransport()

    # -- operations -------------------------------------------------------------------------

    def enroll(self, pending: PendingKey, subject: x509.Name, credentials: Credentials,
               sans: list[x509.GeneralName] | None = None) -> list[x509.Certificate]:
        """ir (RFC 9483 §4.1.1). SANs come from the registration: the template has none."""
        if credentials.secret is not None and credentials.registration_id is not None:
            secret = credentials.secret.encode()
            parameters = PBMParameters(os.urandom(16), PBM_OWF, PBM_ITERATIONS, PBM_MAC)
            signer = _Signer(MACProtection(secret, parameters), RequestHeader(
                subject, credentials.registration_id.encode(), implicit_confirm=True),
                secret=secret)
        elif credentials.previous_chain and credentials.previous_key is not None:
            signer = self._signed_by(credentials.previous_key, credentials.previous_chain)
        else:
            raise RefusedError("no-credentials", "CMP enrollment needs a one-time secret or a "
                                                 "previous-stage certificate and key")
        return self._certify("ir", pending, subject, signer)

    def renew(self, identity: Identity, pending: PendingKey) -> list[x509.Certificate]:
        """kur (RFC 9483 §4.1.3), signed with the current key."""
        signer = self._signed_by(identity.key, identity.chain)
        return self._certify("kur", pending, identity.certificate.subject, signer)

    def ca_certs(self, identity: Identity) -> list[x509.Certificate]:
        """genm caCerts (RFC 9483 §4.3.1), signed with the current key."""
        signer = self._signed_by(identity.key, identity.chain)
        answer = self._exchange("genm", genm_body([CA_CERTS]), signer)
        body = answer.body
        if not isinstance(body, GeneralResponse):
            raise UntrustedAnswerError(f"genm answered with {answer.body_type}")
        values = [v for t, v in body.infos if t == CA_CERTS and v is not None]
        if not values:
            raise UntrustedAnswerError("genp without caCerts")
        certificates = _certificate_sequence(values[0])
        self._trust.accept(certificates)
        return certificates

    # -- one certificate transaction --------------------------------------------------------

    def _certify(self, kind: str, pending: PendingKey, subject: x509.Name,
                 signer: _Signer) -> list[x509.Certificate]:
        body = tlv(SEQUENCE, encode_cert_req_msg(pending.key, subject))
        answer = self._exchange(kind, body, signer)
        if not isinstance(answer.body, CertResponses) or not answer.body.responses:
            raise UntrustedAnswerError(f"{kind} answered with {answer.body_type}")
        response = answer.body.responses[0]
        if response.status == WAITING:
            raise PendingError(60)
        if response.status not in (ACCEPTED, GRANTED_WITH_MODS) or response.certificate is None:
            raise RefusedError(",".join(response.failures) or "rejection", response.detail)
        certificate = response.certificate
        self._trust.accept(answer.body.ca_pubs)
        path = self._trust.path(certificate, [*answer.extra_certs, *answer.body.ca_pubs],
                                self._clock())
        if not answer.header.implicit_confirm:
            self._confirm(certificate, answer, signer)
        return path[:-1]

    def _confirm(self, certificate: x509.Certificate, answer: PKIMessage,
                 signer: _Signer) -> None:
        """certConf → pkiConf in the same transaction (RFC 9483 §4.1.1)."""
        header = RequestHeader(signer.header.sender, signer.header.sender_kid,
                               recip_nonce=answer.header.sender_nonce,
                               transaction_id=signer.header.transaction_id)
        confirm = _Signer(signer.protection, header, signer.extra_certs, signer.secret)
        reply = self._exchange("certConf", cert_conf_body(cert_hash(certificate, None)), confirm)
        if reply.body_type != "pkiconf":
            raise UntrustedAnswerError(f"certConf answered with {reply.body_type}")

    def _signed_by(self, key: Any, chain: Sequence[x509.Certificate]) -> _Signer:
        header = RequestHeader(chain[0].subject, subject_key_id(chain[0]), implicit_confirm=True)
        return _Signer(KeySignature(key), header, tuple(chain))

    # -- transport and answer checks --------------------------------------------------------

    def _exchange(self, kind: str, body: bytes, signer: _Signer) -> PKIMessage:
        request = encode_request(signer.header, kind, body, signer.protection, self._clock(),
                                 signer.extra_certs)
        answer = self._transport.request("POST", self._url, request,
                                         {"Content-Type": MEDIA_TYPE})
        if answer.status != 200 or not answer.content_type.startswith(MEDIA_TYPE):
            raise TransportError(f"CMP server answered HTTP {answer.status} "
                                 f"{answer.body[:200].decode('utf-8', 'replace')!r}")
        try:
            message = decode_pki_message(answer.body)
        except DecodeError as exc:
            raise UntrustedAnswerError(f"malformed CMP answer: {exc}") from exc
        self._check(message, signer)
        if isinstance(message.body, ErrorReport):
            raise RefusedError(",".join(message.body.failures) or "error", message.body.detail)
        return message

    def _check(self, message: PKIMessage, signer: _Signer) -> None:
        header = message.header
        if header.transaction_id != signer.header.transaction_id:
            raise UntrustedAnswerError("answer with another transactionID (RFC 9483 §3.1)")
        if header.recip_nonce != signer.header.sender_nonce:
            raise UntrustedAnswerError("answer whose recipNonce is not our senderNonce")
        try:
            if signer.secret is not None and is_mac_protected(message):
                verify_mac(message, signer.secret)
                return
            # signed: our requests' answers, and a refusal of a MAC request the server could
            # not MAC (unknown registration), which must then chain to a pinned root
            protector = verify_signature_protection(message)
        except ProtectionError as exc:
            raise UntrustedAnswerError(f"answer protection: {exc}") from exc
        self._trust.accept(message.extra_certs)
        self._trust.path(protector, message.extra_certs[1:], self._clock())


def _certificate_sequence(der: bytes) -> list[x509.Certificate]:
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE:
        raise UntrustedAnswerError("caCerts is not a SEQUENCE OF certificates")
    return [x509.load_der_x509_certificate(der[s:e]) for _, s, e in children(der, start, end)]


