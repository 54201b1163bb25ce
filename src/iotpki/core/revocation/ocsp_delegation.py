"""Delegated OCSP responders (RFC 6960 §4.2.2.2): one per authority, issued by it from the
`ocsp-responder` profile (id-kp-OCSPSigning, id-pkix-ocsp-nocheck §4.2.2.2.1) through the
ordinary issuance path, and replaced automatically before it expires."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from iotpki.core.ca.certificate import renewal_time
from iotpki.core.ca.issuance import IssuanceRequest, IssuanceService
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError
from iotpki.core.keyring import KeyRing
from iotpki.core.outcomes import Issued
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.revocation.status import ResponderRecord
from iotpki.wire.keys import signature_hash_for

PROFILE = "ocsp-responder"
REQUESTER = "ocsp-responder"


@dataclass(frozen=True)
class ResponderSigner:
    record: ResponderRecord
    key: Any
    hash: Any  # the hash to sign with, or None (EdDSA)

    def renew_at(self, fraction: float) -> datetime:
        """When the last `fraction` of the certificate's lifetime begins."""
        return renewal_time(self.record.certificate, fraction)


class DelegatedResponders:
    def __init__(self, uow: UnitOfWorkFactory, keys: KeyRing, issuance: IssuanceService,
                 clock: Clock, key_type: str = "ec-p256", renew_fraction: float = 1 / 3) -> None:
        self._uow = uow
        self._keys = keys
        self._issuance = issuance
        self._clock = clock
        self._key_type = key_type
        self._renew_fraction = renew_fraction
        self._signers: dict[str, ResponderSigner] = {}
        self._lock = threading.Lock()  # request handling and the worker thread both ask

    def current(self, authority: str) -> ResponderSigner:
        """The authority's responder; a new one is issued once the old one nears its end."""
        signer = self._signers.get(authority)
        if signer is not None and self._clock.now() < signer.renew_at(self._renew_fraction):
            return signer
        with self._lock:
            signer = self._signers.get(authority)
            if signer is None or self._clock.now() >= signer.renew_at(self._renew_fraction):
                signer = self._stored_or_new(authority)
                self._signers[authority] = signer
        return signer

    def _stored_or_new(self, authority: str) -> ResponderSigner:
        with self._uow() as uow:
            record = uow.ocsp_responders.get(authority)
        if record is not None:  # perhaps another node already replaced it
            signer = self._load(record)
            if self._clock.now() < signer.renew_at(self._renew_fraction):
                return signer
        return self._load(self.rotate(authority))

    def rotate(self, authority: str, location: str | None = None) -> ResponderRecord:
        """Issue a new responder certificate with a new key and make it the current one.
        The key goes to `location`, by default where the authority's own key is held (a CA
        on a token gets its responder key on the same token)."""
        location = location or key_location_of(self._uow, self._keys, authority)
        key_ref = self._keys.generate(self._key_type, f"{authority}-ocsp", location)
        key = self._keys.load(key_ref)
        outcome = self._issuance.issue(IssuanceRequest(
            authority, PROFILE, _csr(key, authority), REQUESTER, method="internal"))
        if not isinstance(outcome, Issued):
            self._keys.discard(key_ref)
            raise ConfigurationError(f"cannot issue the OCSP responder of {authority}: {outcome}")
        cert = outcome.certificate
        record = ResponderRecord(authority, key_ref, cert, cert.not_valid_after_utc,
                                 self._clock.now())
        with self._uow() as uow:
            uow.ocsp_responders.put(record)
            uow.commit()
        return record

    def _load(self, record: ResponderRecord) -> ResponderSigner:
        key = self._keys.load(record.key_ref)
        return ResponderSigner(record, key, signature_hash_for(key))


def key_location_of(uow: UnitOfWorkFactory, keys: KeyRing, authority: str) -> str | None:
    """Where the authority's key is held; None (the default backend) if it holds none."""
    with uow() as tx:
        record = tx.authorities.get(authority)
    if record is None or record.key_ref is None:
        return None
    return keys.location_of(record.key_ref)


def _csr(key: Any, authority: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"OCSP responder {authority}")])
    hash_algorithm: Any = signature_hash_for(key)
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hash_algorithm)
    return csr.public_bytes(serialization.Encoding.DER)
