"""ACME certificates: download (RFC 8555 §7.4.2) and revocation (§7.6).

- Download: POST-as-GET by the account of the order; `application/pem-certificate-chain`
  with the certificate and the intermediate CAs; the alternate chain `/1` adds the root
  (`Link: rel="alternate"`).
- revokeCert: signed by the account that ordered the certificate, by an account holding
  valid authorizations for every name in it, or with the certificate's own key (`jwk`).
  Revocation goes through the core (`RevocationService`: CRL, OCSP, audit, events);
  the service's own certificates are never revoked this way (`unauthorized`); a revoked
  certificate is `alreadyRevoked`.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.directory import CertificateDirectory
from iotpki.core.clock import Clock
from iotpki.core.errors import AccessDeniedError, ConflictError
from iotpki.core.errors import NotFoundError as CoreNotFound
from iotpki.core.errors import RefusalReason as R
from iotpki.core.ra.acme import ACMEAccount
from iotpki.core.revocation.service import RevocationService
from iotpki.protocols.acme.problems import ACMEProblem, NotFound
from iotpki.protocols.acme.server import ACMEAnswer, ACMEServer, Signed
from iotpki.wire.acme.jws import JWSError, spki_der
from iotpki.wire.acme.messages import PEM_CHAIN, decode_revocation
from iotpki.wire.chain import encode_pem_chain

# RFC 5280 §5.3.1 codes ACME clients send (§7.6), as the core names them.
REASON_FLAGS = {0: x509.ReasonFlags.unspecified, 1: x509.ReasonFlags.key_compromise,
                3: x509.ReasonFlags.affiliation_changed, 4: x509.ReasonFlags.superseded,
                5: x509.ReasonFlags.cessation_of_operation,
                9: x509.ReasonFlags.privilege_withdrawn}


class ACMECertificates:
    def __init__(self, server: ACMEServer, certificates: CertificateDirectory,
                 revocation: RevocationService, clock: Clock) -> None:
        self._server = server
        self._clock = clock
        self._state = server.state
        self._certificates = certificates
        self._revocation = revocation
        server.on_post("cert", self.download)
        server.on_post("revoke-cert", self.revoke)

    def download(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        account = signed.owned()
        if not rest or len(rest) > 2 or rest[1:] not in ((), ("1",)):
            raise NotFound("no such certificate")
        order = self._state.order(rest[0])
        if order is None or order.certificate is None or order.label != signed.endpoint.label:
            raise NotFound("no such certificate")
        if order.account_id != account.id:
            raise ACMEProblem("unauthorized", "the certificate belongs to another account")
        record = self._certificates.get_by_fingerprint(order.certificate)
        chain = list(self._state.issuing_chain(record.authority))
        full = rest[1:] == ("1",)
        body = encode_pem_chain([record.certificate, *(chain if full else chain[:-1])])
        alternate = signed.links.certificate(order.id) + ("" if full else "/1")
        return ACMEAnswer(200, body, PEM_CHAIN,
                          headers={"Link": f'<{alternate}>;rel="alternate"'})

    def revoke(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        if rest:
            raise NotFound("no such resource")
        try:
            request = decode_revocation(signed.jws.json_payload())
        except JWSError as exc:
            raise ACMEProblem(exc.problem, exc.detail) from exc
        fingerprint = request.certificate.fingerprint(hashes.SHA256()).hex()
        try:
            record = self._certificates.get_by_fingerprint(fingerprint)
        except CoreNotFound as exc:
            raise ACMEProblem("malformed", "this server did not issue that certificate") from exc
        self._check_revoker(signed, record)
        if record.status is CertificateStatus.REVOKED:
            raise ACMEProblem("alreadyRevoked", "the certificate is revoked already",
                              R.REVOKED)
        try:
            self._revocation.revoke(record.authority, record.serial,
                                    REASON_FLAGS[request.reason], signed.actor,
                                    holder=signed.account is None)
        except AccessDeniedError as exc:
            raise ACMEProblem("unauthorized", str(exc), R.METHOD_NOT_ALLOWED) from exc
        except ConflictError as exc:
            raise ACMEProblem("alreadyRevoked", str(exc), R.REVOKED) from exc
        return ACMEAnswer(200)

    def _check_revoker(self, signed: Signed, record: CertificateRecord) -> None:
        """§7.6: the certificate's key, the account that ordered it, or an account with valid
        authorizations for all of its names."""
        if signed.account is None:
            if spki_der(record.certificate.public_key()) != spki_der(signed.key):
                raise ACMEProblem("unauthorized", "the JWS key is neither an account key nor "
                                                  "the certificate's key")
            return
        order = self._state.order_for_certificate(record.fingerprint)
        if order is not None and order.account_id == signed.account.id:
            return
        if order is not None and self._authorized_for_all(signed.account, record):
            return
        raise ACMEProblem("unauthorized", "this account may not revoke that certificate")

    def _authorized_for_all(self, account: ACMEAccount,
                            record: CertificateRecord) -> bool:
        names = [s[4:] for s in record.sans if s.startswith("dns:")]
        if not names or len(names) != len(record.sans):
            return False
        now = self._clock.now()
        return all(self._state.valid_authorization(account.id, "dns", n, now) is not None
                   for n in names)

