"""OCSP client with a cache (RFC 6960 §4.1, §4.2, §3.2), for the peer check on the device.

A status is asked of the responder named in the certificate's AIA (RFC 5280 §4.2.2.1),
and believed only if (§3.2) the response is signed by the issuer or by a responder the
issuer delegated (id-kp-OCSPSigning, issued directly by the issuer), names this
certificate, and is current (thisUpdate not in the future, nextUpdate not past). It is
then cached until its nextUpdate. Anything else gives `unknown`: the peer check fails
closed. `RevocationChecker` asks OCSP first and the CRL (`CRLCache`) when OCSP gives no
answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from iotpki.agent.errors import AgentError
from iotpki.agent.revocation import CRLCache
from iotpki.agent.transport import HTTPTransport, Transport
from iotpki.wire.der import BIT_STRING, children, read_tlv
from iotpki.wire.peer import RevocationStatus

Clock = Callable[[], datetime]
SKEW = timedelta(minutes=5)  # tolerated clock difference for thisUpdate
DEFAULT_LIFETIME = timedelta(minutes=10)  # for a response without nextUpdate (§4.2.2.1)


def ocsp_locations(certificate: x509.Certificate) -> list[str]:
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in access
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
            and d.access_location.value.startswith("http://")]


class OCSPCache:
    """A `RevocationSource`: status from the issuer's OCSP responder, cached until
    nextUpdate. `fetches` counts the requests actually sent (the tests read it)."""

    def __init__(self, transport: Transport | None = None,
                 now: Clock = lambda: datetime.now(UTC)) -> None:
        self._transport = transport or HTTPTransport(timeout=10)
        self._now = now
        self._cache: dict[tuple[int, bytes], tuple[RevocationStatus, datetime]] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def close(self) -> None:
        self._transport.close()

    def __call__(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        key = (certificate.serial_number, _key_hash(issuer))
        now = self._now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        for url in ocsp_locations(certificate):
            try:
                status, until = self._ask(url, certificate, issuer, now)
            except (AgentError, ValueError):
                continue
            with self._lock:
                self._cache[key] = (status, until)
            return status
        return RevocationStatus.UNKNOWN

    def _ask(self, url: str, certificate: x509.Certificate, issuer: x509.Certificate,
             now: datetime) -> tuple[RevocationStatus, datetime]:
        request = ocsp.OCSPRequestBuilder().add_certificate(
            certificate, issuer, hashes.SHA256()).build()
        self.fetches += 1
        answer = self._transport.request(
            "POST", url, request.public_bytes(serialization.Encoding.DER),
            {"Content-Type": "application/ocsp-request"})
        if answer.status != 200:
            raise AgentError(f"OCSP responder {url} answered HTTP {answer.status}")
        response = ocsp.load_der_ocsp_response(answer.body)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise AgentError(f"OCSP responder {url}: {response.response_status.name}")
        _check_signer(response, issuer)
        single = next((r for r in response.responses
                       if r.serial_number == certificate.serial_number
                       and r.issuer_key_hash == _key_hash(issuer, r.hash_algorithm)), None)
        if single is None:
            raise AgentError("the OCSP response does not name the certificate")
        if single.this_update_utc > now + SKEW or (
                single.next_update_utc is not None and now >= single.next_update_utc):
            raise AgentError("the OCSP response is not current")
        until = single.next_update_utc or now + DEFAULT_LIFETIME
        status = {ocsp.OCSPCertStatus.GOOD: RevocationStatus.GOOD,
                  ocsp.OCSPCertStatus.REVOKED: RevocationStatus.REVOKED}.get(
                      single.certificate_status, RevocationStatus.UNKNOWN)
        return status, until


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    """Hash of the issuer's subjectPublicKey BIT STRING value (RFC 6960 §4.1.1)."""
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    _, start, end = read_tlv(spki, 0)
    bit_string = next(spki[s:e] for tag, s, e in children(spki, start, end) if tag == BIT_STRING)
    _, value_start, value_end = read_tlv(bit_string, 0)
    digest = hashes.Hash(algorithm or hashes.SHA256())
    digest.update(bit_string[value_start + 1:value_end])
    return digest.finalize()


def _check_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """RFC 6960 §4.2.2.2: the issuer itself, or a delegate it issued with OCSPSigning."""
    signer = issuer
    if not _names(response, issuer):
        delegates = [c for c in response.certificates if _names(response, c)]
        if not delegates:
            raise AgentError("the OCSP response is signed by an unknown responder")
        signer = delegates[0]
        try:
            signer.verify_directly_issued_by(issuer)
            usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
            raise AgentError(f"the OCSP responder is not delegated by the issuer: {exc}") from exc
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
            raise AgentError("the OCSP responder certificate lacks id-kp-OCSPSigning")
    _verify(signer, response)


def _names(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return bool(response.responder_name == certificate.subject)
    return response.responder_key_hash == _key_hash(certificate, hashes.SHA1())


def _verify(signer: x509.Certificate, response: ocsp.OCSPResponse) -> None:
    key = signer.public_key()
    data, signature = response.tbs_response_bytes, response.signature
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            assert response.signature_hash_algorithm is not None
            key.verify(signature, data, ec.ECDSA(response.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            assert response.signature_hash_algorithm is not None
            key.verify(signature, data, padding.PKCS1v15(), response.signature_hash_algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            raise AgentError(f"unsupported OCSP signature key {type(key).__name__}")
    except InvalidSignature as exc:
        raise AgentError("the OCSP response signature does not verify") from exc


class RevocationChecker:
    """OCSP first, then the CRL: the first definite answer wins; unknown fails closed."""

    def __init__(self, ocsp_cache: OCSPCache | None = None,
                 crl_cache: CRLCache | None = None) -> None:
        self.ocsp = ocsp_cache or OCSPCache()
        self.crl = crl_cache or CRLCache()

    def close(self) -> None:
        self.ocsp.close()

    def __call__(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        status = self.ocsp(certificate, issuer)
        return status if status is not RevocationStatus.UNKNOWN else self.crl(certificate, issuer)
