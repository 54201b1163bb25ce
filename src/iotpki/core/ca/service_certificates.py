"""Certificates the service holds for itself: one key and certificate per (owner, purpose).

Several protocols sign with a key of the service's own, certified by one of its CAs:
- the delegated OCSP responder of each authority (RFC 6960 §4.2.2.2, id-kp-OCSPSigning);
- the CMP protection certificate of each authority (RFC 9483 §3.1, id-kp-cmcCA);
- the signer of server-generated keys delivered over EST (RFC 7030 §4.4.2);
- the manifest signer of each organization (CMS SignedData, RFC 5652 §5);
- the RA certificate of each SCEP endpoint (RFC 8894 §2.1), RSA: clients encrypt to it.

Each is issued through the ordinary issuance path from the profile named like its purpose,
with a new key held where the issuing CA's key is (a CA on a PKCS#11 token gets its
service keys on the same token). One renewal rule for all: a new key and certificate once
the last third of the current one's lifetime begins. The certificates are stored, so every
node uses the same one; each node keeps the current one in memory until it is due.

A revoked (or held) service certificate is replaced at once (issue 15 item 7): the operator
revoking one triggers `replace_revoked` in the same process, and every node checks its
cached certificate against the store every `REVALIDATE` (5 s): a newer stored certificate is
taken up, a revoked one replaced. A replacement is audited (`service.certificate.replace`)
and logged.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.audit.ports import AuditRepository
from iotpki.core.ca.authority import Authority
from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus, renewal_time
from iotpki.core.ca.issuance import IssuanceRequest, IssuanceService
from iotpki.core.ca.ports import (
    AuthorityRepository,
    CertificateRepository,
    Purpose,
    ServiceCertificate,
    ServiceCertificateRepository,
)
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.keyring import KeyRing
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued
from iotpki.core.ports import Transaction
from iotpki.wire.keys import signature_hash_for
from iotpki.wire.names import parse_subject

KEY_TYPE = "ec-p256"
RENEW_FRACTION = 1 / 3  # renewed once the last third of the lifetime begins
REVALIDATE = timedelta(seconds=5)  # how often a node compares its cached one with the store
ACTOR = "service-certificates"
log = logging.getLogger(__name__)


_SUBJECTS: dict[Purpose, str] = {
    Purpose.OCSP_SIGNING: "CN=OCSP responder {owner}",
    Purpose.CMP_PROTECTION: "CN=CMP {owner}",
    Purpose.KEY_DELIVERY: "CN=Key delivery {owner}",
    Purpose.MANIFEST_SIGNING: "CN={owner} manifest signer,O={owner}",
    Purpose.SCEP_RA: "CN=SCEP RA {owner}",
}
# RFC 8894 §2.1, §3.2.2: clients encrypt to the RA with RSA key transport.
_KEY_TYPES: dict[Purpose, str] = {Purpose.SCEP_RA: "rsa-2048"}
_DECRYPTING = frozenset({Purpose.SCEP_RA})  # requests are encrypted to the RA key


@dataclass(frozen=True)
class ServiceSigner:
    """A loaded service key with its certificate and the issuing CA's chain."""

    record: ServiceCertificate
    key: Any
    hash: Any  # the hash to sign with, or None (EdDSA)
    chain: tuple[x509.Certificate, ...]  # the issuing CA's certificate up to its root

    @property
    def certificate(self) -> x509.Certificate:
        return self.record.certificate

    def renew_at(self) -> datetime:
        return renewal_time(self.record.certificate, RENEW_FRACTION)


class ServiceCertificateUnitOfWork(Transaction, Protocol):
    @property
    def authorities(self) -> AuthorityRepository: ...

    @property
    def service_certificates(self) -> ServiceCertificateRepository: ...

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def audit(self) -> AuditRepository: ...


class ServiceCertificates:
    def __init__(self, uow: Callable[[], ServiceCertificateUnitOfWork], keys: KeyRing,
                 issuance: IssuanceService, clock: Clock) -> None:
        self._uow = uow
        self._keys = keys
        self._issuance = issuance
        self._clock = clock
        self._signers: dict[tuple[str, Purpose], ServiceSigner] = {}
        self._checked: dict[tuple[str, Purpose], datetime] = {}  # last compared with the store
        self._lock = threading.Lock()  # request handlers and worker threads both ask

    def stored(self, owner: str, purpose: Purpose) -> ServiceCertificate | None:
        """The owner's current certificate for `purpose` as stored, without issuing or
        replacing one (what a console shows)."""
        with self._uow() as uow:
            return uow.service_certificates.current(owner, purpose)

    def current(self, owner: str, purpose: Purpose, issuer: str | None = None,
                actor: str | None = None) -> ServiceSigner:
        """The owner's key and certificate for `purpose`, replaced once due. `issuer` is the
        authority that certifies it (default: the owner, an authority); `actor` is audited
        as the requester when a new one is issued."""
        key = (owner, purpose)
        signer = self._signers.get(key)
        if signer is not None and self._fresh(key, signer):
            return signer
        with self._lock:
            signer = self._signers.get(key)
            if signer is None or not self._fresh(key, signer):
                signer = self._stored_or_new(owner, purpose, issuer or owner, actor, signer)
                self._signers[key] = signer
                self._checked[key] = self._clock.now()
        return signer

    def _fresh(self, key: tuple[str, Purpose], signer: ServiceSigner) -> bool:
        now = self._clock.now()
        checked = self._checked.get(key)
        return now < signer.renew_at() and checked is not None and now < checked + REVALIDATE

    def _stored_or_new(self, owner: str, purpose: Purpose, issuer: str, actor: str | None,
                       cached: ServiceSigner | None) -> ServiceSigner:
        with self._uow() as uow:
            record = uow.service_certificates.current(owner, purpose)
            status = None if record is None else _status(uow.certificates, record)
        if record is not None and status is not None and status is not CertificateStatus.GOOD:
            # Revoked from under us (the operator): never sign with it again.
            return self._load(self._replace(owner, purpose, issuer, record, status), issuer)
        if record is not None:  # perhaps another node already replaced it
            if cached is not None and cached.record.certificate == record.certificate:
                signer = cached
            else:
                signer = self._load(record, issuer)
            if self._clock.now() < signer.renew_at():
                return signer
        return self._load(self.rotate(owner, purpose, issuer, actor=actor), issuer)

    def revalidate(self, owner: str, purpose: Purpose) -> None:
        """Compare the cached certificate with the store at its next use (not in up to
        `REVALIDATE`): a caller saw it change."""
        self._checked.pop((owner, purpose), None)

    def replace_revoked(self, revoked: CertificateRecord) -> None:
        """The operator revoked `revoked`: if it is a current service certificate, replace
        it now (`RevocationService.on_infrastructure_revoked`)."""
        try:
            purpose = Purpose(revoked.profile)
        except ValueError:
            return
        owner = revoked.authority
        if purpose is Purpose.MANIFEST_SIGNING:
            owner = self._authority(revoked.authority).organization
        elif purpose is Purpose.SCEP_RA:  # owned by a SCEP endpoint, named in the subject
            owner = _owner_named(revoked.certificate, purpose)
        with self._uow() as uow:
            current = uow.service_certificates.current(owner, purpose)
        if current is None or current.certificate != revoked.certificate:
            return
        with self._lock:
            self._replace(owner, purpose, revoked.authority, current, revoked.status)
            self._checked.pop((owner, purpose), None)  # the next use loads the new one

    def _replace(self, owner: str, purpose: Purpose, issuer: str, old: ServiceCertificate,
                 status: CertificateStatus) -> ServiceCertificate:
        new = self.rotate(owner, purpose, issuer, actor=ACTOR)
        fingerprints = [_fingerprint(c.certificate) for c in (old, new)]
        with self._uow() as uow:
            append_audit(uow.audit, self._clock.now(), AuditRecord(
                "service.certificate.replace", "success", ACTOR, f"{purpose.value}:{owner}",
                {"revoked": fingerprints[0], "status": status.value,
                 "replacement": fingerprints[1]}))
            uow.commit()
        log.warning("%s certificate of %s is %s: replaced by %s", purpose.value, owner,
                    status.value, fingerprints[1])
        return new

    def rotate(self, owner: str, purpose: Purpose, issuer: str | None = None,
               location: str | None = None, actor: str | None = None) -> ServiceCertificate:
        """Issue a new key and certificate and make them the current ones. The key goes to
        `location`, by default where the issuing authority's own key is held."""
        authority = self._authority(issuer or owner)
        if location is None and authority.key_ref is not None:
            location = self._keys.location_of(authority.key_ref)
        key_ref = self._keys.generate(_KEY_TYPES.get(purpose, KEY_TYPE),
                                     f"{owner}-{purpose.value}".replace(":", "-"), location,
                                     decrypt=purpose in _DECRYPTING)
        key = self._keys.load(key_ref)
        outcome = self._issuance.issue(IssuanceRequest(
            authority.label, purpose.value, _csr(key, _SUBJECTS[purpose].format(owner=owner)),
            actor or purpose.value, method=MethodName.INTERNAL))
        if not isinstance(outcome, Issued):
            self._keys.discard(key_ref)
            raise ConfigurationError(f"cannot issue the {purpose.value} certificate of "
                                     f"{owner}: {outcome}")
        record = ServiceCertificate(owner, purpose, key_ref, outcome.certificate,
                                    self._clock.now())
        with self._uow() as uow:
            uow.service_certificates.add(record)
            uow.commit()
        return record

    def _authority(self, label: str) -> Authority:
        with self._uow() as uow:
            authority = uow.authorities.get(label)
        if authority is None:
            raise NotFoundError(f"unknown authority {label!r}")
        return authority

    def _load(self, record: ServiceCertificate, issuer: str) -> ServiceSigner:
        key = self._keys.load(record.key_ref)
        chain = self._authority(issuer).full_chain
        return ServiceSigner(record, key, signature_hash_for(key), chain)


def _owner_named(certificate: x509.Certificate, purpose: Purpose) -> str:
    """The owner a service certificate's subject names (`_SUBJECTS`: "CN=SCEP RA {owner}")."""
    prefix = _SUBJECTS[purpose].removeprefix("CN=").split("{owner}")[0]
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    return common_name.removeprefix(prefix)


def _csr(key: Any, subject: str) -> bytes:
    hash_algorithm: Any = signature_hash_for(key)
    csr = x509.CertificateSigningRequestBuilder().subject_name(parse_subject(subject)).sign(
        key, hash_algorithm)
    return csr.public_bytes(serialization.Encoding.DER)


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _status(certificates: CertificateRepository,
            record: ServiceCertificate) -> CertificateStatus | None:
    found = certificates.get_by_fingerprint(_fingerprint(record.certificate))
    return None if found is None else found.status
