"""The OCSP responder's answers (RFC 6960 §2.2, §2.3, §4.2; RFC 5019 §2.2, §6).

- Status from the certificates index (never from a CRL): good, revoked (certificateHold
  for a held certificate, with its revocation time and reason) or unknown for a serial the
  authority never issued. A CertID naming an issuer other than the addressed authority, or
  an authority not served here, gets `unauthorized`; undecodable input `malformedRequest`.
- Signed by the authority's delegated responder (§4.2.2.2), responderID byKey (§4.2.2.3).
- Single-certificate requests without a nonce get pre-signed responses from a cache; an
  entry is re-signed after half its validity, and dropped as soon as the authority's
  revocation counter shows its certificate changed (`refresh_changes`, polled by each node).
- A nonce (§4.4.1, RFC 8954) is echoed in a freshly signed response; several certificates
  in one request (§4.1.1) are answered in one response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import AuthorityRepository, Purpose
from iotpki.core.ca.service_certificates import ServiceCertificates, ServiceSigner
from iotpki.core.clock import Clock
from iotpki.core.ports import Transaction
from iotpki.core.revocation.ports import RevocationIndex
from iotpki.core.revocation.status import StatusEntry
from iotpki.wire.der import children, read_tlv
from iotpki.wire.errors import DecodeError
from iotpki.wire.ocsp import HASHES, CertID, decode_ocsp_request, merge_responses

Status = ocsp.OCSPResponseStatus


class OCSPUnitOfWork(Transaction, Protocol):
    """The repositories OCSP answers uses."""

    @property
    def authorities(self) -> AuthorityRepository: ...

    @property
    def revocation(self) -> RevocationIndex: ...


@dataclass(frozen=True)
class OCSPPolicy:
    validity: timedelta = timedelta(hours=4)  # nextUpdate - thisUpdate
    cache_entries: int = 200_000
    unknown_issuer_retry: timedelta = timedelta(seconds=5)  # how long "not served" is cached


@dataclass(frozen=True)
class OCSPAnswer:
    der: bytes
    status: ocsp.OCSPResponseStatus
    this_update: datetime | None = None
    next_update: datetime | None = None
    cacheable: bool = False  # RFC 5019 §6: HTTP caching only for nonce-free good/revoked


def failure(status: ocsp.OCSPResponseStatus) -> OCSPAnswer:
    """An unsigned error response (RFC 6960 §2.3)."""
    return OCSPAnswer(ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER), status)


class _Issuer:
    """An authority served here, with its CertID hashes for every supported algorithm."""

    def __init__(self, label: str, certificate: x509.Certificate) -> None:
        self.label = label
        name = certificate.subject.public_bytes()
        key = _subject_public_key(certificate)
        self.hashes = {alg: (hashlib.new(alg, name).digest(), hashlib.new(alg, key).digest())
                       for alg in HASHES}

    def issued(self, cert_id: CertID) -> bool:
        return self.hashes[cert_id.hash_algorithm] == (cert_id.issuer_name_hash,
                                                       cert_id.issuer_key_hash)


def _subject_public_key(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bits (RFC 6960 §4.1.1 issuerKeyHash)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    _, start, end = read_tlv(spki, 0)
    _, bits_start, _ = list(children(spki, start, end))[1]
    _, value, value_end = read_tlv(spki, bits_start)
    return spki[value + 1:value_end]  # skip the unused-bits octet


class _Cached(NamedTuple):
    answer: OCSPAnswer
    refresh_at: datetime


class OCSPResponder:
    def __init__(self, uow: Callable[[], OCSPUnitOfWork], certificates: ServiceCertificates,
                 clock: Clock, policy: OCSPPolicy | None = None) -> None:
        self._uow = uow
        self._certificates = certificates
        self._clock = clock
        self.policy = policy or OCSPPolicy()
        self._issuers: dict[str, _Issuer | datetime] = {}  # datetime: not served until then
        self._cache: dict[tuple[str, int, str], _Cached] = {}
        self._seen: dict[str, int] = {}  # revocation counters as last polled
        self._signed_by: dict[str, int] = {}  # authority → serial of the cached answers' signer
        self._generation = 0  # bumped whenever a poll finds changes

    def responder(self, authority: str) -> ServiceSigner:
        """The authority's delegated responder (§4.2.2.2), replaced before it expires."""
        return self._certificates.current(authority, Purpose.OCSP_SIGNING)

    def respond(self, authority: str, request_der: bytes) -> OCSPAnswer:
        try:
            request = decode_ocsp_request(request_der)
        except DecodeError:
            return failure(Status.MALFORMED_REQUEST)
        issuer = self._issuer(authority)
        if issuer is None or not all(issuer.issued(c) for c in request.cert_ids):
            return failure(Status.UNAUTHORIZED)
        if len(request.cert_ids) == 1 and request.nonce is None:
            return self._pre_signed(issuer, request.cert_ids[0])
        return self._fresh(issuer, request.cert_ids, request.nonce)

    def answer_from_cache(self, authority: str, request_der: bytes) -> OCSPAnswer | None:
        """The answer if it needs neither the database nor a signature (a fresh pre-signed
        response, or malformedRequest), else None: then call `respond`, which may block."""
        try:
            request = decode_ocsp_request(request_der)
        except DecodeError:
            return failure(Status.MALFORMED_REQUEST)
        issuer = self._issuers.get(authority)
        if not isinstance(issuer, _Issuer) or len(request.cert_ids) != 1 or request.nonce:
            return None
        cert_id = request.cert_ids[0]
        hit = self._cache.get((authority, cert_id.serial, cert_id.hash_algorithm))
        if hit is None or not issuer.issued(cert_id) or self._clock.now() >= hit.refresh_at:
            return None
        return hit.answer

    def _pre_signed(self, issuer: _Issuer, cert_id: CertID) -> OCSPAnswer:
        key = (issuer.label, cert_id.serial, cert_id.hash_algorithm)
        now = self._clock.now()
        hit = self._cache.get(key)
        if hit is not None and now < hit.refresh_at:
            return hit.answer
        generation = self._generation
        entry = self._lookup(issuer.label, cert_id.serial)
        signer = self.responder(issuer.label)
        answer = self._sign(signer, cert_id, entry, now, None)
        if entry is not None and generation == self._generation:
            if len(self._cache) >= self.policy.cache_entries:
                self._cache.pop(next(iter(self._cache)))
            refresh_at = now + self.policy.validity / 2
            self._cache[key] = _Cached(answer, refresh_at)
            self._signed_by[issuer.label] = signer.certificate.serial_number
        return answer

    def _fresh(self, issuer: _Issuer, cert_ids: tuple[CertID, ...],
               nonce: bytes | None) -> OCSPAnswer:
        now = self._clock.now()
        signer = self.responder(issuer.label)  # one signer for every part
        answers = [self._sign(signer, c, self._lookup(issuer.label, c.serial), now, nonce)
                   for c in cert_ids]
        der = merge_responses([a.der for a in answers], signer.key, signer.hash)
        return OCSPAnswer(der, Status.SUCCESSFUL, answers[0].this_update,
                          answers[0].next_update, cacheable=False)

    def _lookup(self, authority: str, serial: int) -> StatusEntry | None:
        with self._uow() as uow:
            return uow.revocation.lookup(authority, serial)

    def _sign(self, signer: ServiceSigner, cert_id: CertID, entry: StatusEntry | None,
              now: datetime, nonce: bytes | None) -> OCSPAnswer:
        this_update = now.replace(microsecond=0)
        next_update = this_update + self.policy.validity
        builder = _with_status(ocsp.OCSPResponseBuilder(), cert_id, entry, this_update,
                               next_update)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH,
                                       signer.record.certificate)
        builder = builder.certificates([signer.record.certificate])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), False)
        der = _signed(builder, signer)
        return OCSPAnswer(der, Status.SUCCESSFUL, this_update, next_update,
                          cacheable=nonce is None and entry is not None)

    def _issuer(self, label: str) -> _Issuer | None:
        known = self._issuers.get(label)
        now = self._clock.now()
        if isinstance(known, _Issuer):
            return known
        if known is not None and now < known:
            return None
        with self._uow() as uow:
            authority = uow.authorities.get(label)
        if authority is None or not authority.can_issue:
            self._issuers[label] = now + self.policy.unknown_issuer_retry
            return None
        issuer = _Issuer(label, authority.certificate)
        self._issuers[label] = issuer
        return issuer

    def polled_counters(self) -> dict[str, int]:
        """The revocation counters as of the last `refresh_changes` (0 if never changed)."""
        return {label: seq for label, seq in self._seen.items() if label}

    def refresh_changes(self) -> int:
        """Drop cached responses of certificates whose status changed since the last call
        (on any node). Cheap when nothing changed: one query. Returns the number dropped."""
        with self._uow() as uow:
            counters = dict(uow.revocation.counters())
            if not self._seen:  # first poll: start from now rather than read every change
                return self._start(counters)
            changed = {label: uow.revocation.changed_since(label, self._seen.get(label, 0))
                       for label, seq in counters.items() if seq > self._seen.get(label, 0)}
        if not changed:
            return 0
        self._generation += 1
        dropped = 0
        for label, entries in changed.items():
            if any(int(e.serial_hex, 16) == self._signed_by.get(label) for e in entries):
                # The responder itself was revoked: nothing it signed is served again, and
                # the next answer is signed by its replacement (issue 15 item 7).
                self._certificates.revalidate(label, Purpose.OCSP_SIGNING)
                dropped += self._drop_authority(label)
                continue
            for entry in entries:
                for algorithm in HASHES:
                    key = (label, int(entry.serial_hex, 16), algorithm)
                    dropped += self._cache.pop(key, None) is not None
        self._seen.update(counters)
        return dropped

    def _drop_authority(self, label: str) -> int:
        keys = [key for key in self._cache if key[0] == label]
        for key in keys:
            del self._cache[key]
        self._signed_by.pop(label, None)
        return len(keys)

    def _start(self, counters: dict[str, int]) -> int:
        self._generation += 1  # answers being signed now are not cached
        dropped = len(self._cache)
        self._cache.clear()
        self._seen = {**counters, "": 0}  # never empty again
        return dropped


def _with_status(builder: ocsp.OCSPResponseBuilder, cert_id: CertID, entry: StatusEntry | None,
                 this_update: datetime, next_update: datetime) -> ocsp.OCSPResponseBuilder:
    status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    if entry is not None and entry.status is CertificateStatus.GOOD:
        status = ocsp.OCSPCertStatus.GOOD
    elif entry is not None:
        status, revoked_at = ocsp.OCSPCertStatus.REVOKED, entry.revoked_at
        reason = x509.ReasonFlags(entry.reason) if entry.reason else None
    return builder.add_response_by_hash(
        cert_id.issuer_name_hash, cert_id.issuer_key_hash, cert_id.serial,
        HASHES[cert_id.hash_algorithm], status, this_update, next_update, revoked_at, reason)


def _signed(builder: ocsp.OCSPResponseBuilder, signer: ServiceSigner) -> bytes:
    return builder.sign(signer.key, signer.hash).public_bytes(serialization.Encoding.DER)
