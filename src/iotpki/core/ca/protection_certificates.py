"""The CMP protection certificate of each authority (RFC 9483 §3.1, §3.3).

Answers to signature-protected requests are signed with a key of the CA's own, certified
by the CA from the `cmp-protection` profile (id-kp-cmcCA) through the ordinary issuance
path, and put first in extraCerts with the CA chain. The certificate is stored (every
node uses the same one) and replaced once the last third of its lifetime begins, like the
delegated OCSP responders (`core.revocation.ocsp_delegation`).
"""

from __future__ import annotations

import threading
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
from iotpki.core.ra.transactions import ProtectionRecord
from iotpki.core.revocation.ocsp_delegation import key_location_of
from iotpki.wire.cmp.protection import SignatureProtection
from iotpki.wire.keys import signature_hash_for

PROFILE = "cmp-protection"
REQUESTER = "cmp-protection"


class CMPProtection:
    def __init__(self, uow: UnitOfWorkFactory, keys: KeyRing, issuance: IssuanceService,
                 clock: Clock, key_type: str = "ec-p256", renew_fraction: float = 1 / 3) -> None:
        self._uow = uow
        self._keys = keys
        self._issuance = issuance
        self._clock = clock
        self._key_type = key_type
        self._renew_fraction = renew_fraction
        self._current: dict[str, tuple[ProtectionRecord, SignatureProtection]] = {}
        self._lock = threading.Lock()

    def signer(self, authority: str) -> SignatureProtection:
        """The authority's protection; a new certificate once the old one nears its end."""
        cached = self._current.get(authority)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        with self._lock:
            cached = self._current.get(authority)
            if cached is None or not self._fresh(cached[0]):
                record = self._stored_or_new(authority)
                cached = (record, self._load(record))
                self._current[authority] = cached
        return cached[1]

    def _fresh(self, record: ProtectionRecord) -> bool:
        return self._clock.now() < renewal_time(record.certificate, self._renew_fraction)

    def _stored_or_new(self, authority: str) -> ProtectionRecord:
        with self._uow() as uow:
            record = uow.cmp.protection(authority)
        if record is not None and self._fresh(record):
            return record  # perhaps another node made it
        return self.rotate(authority)

    def rotate(self, authority: str) -> ProtectionRecord:
        location = key_location_of(self._uow, self._keys, authority)  # beside the CA's key
        key_ref = self._keys.generate(self._key_type, f"{authority}-cmp", location)
        key = self._keys.load(key_ref)
        outcome = self._issuance.issue(IssuanceRequest(
            authority, PROFILE, _csr(key, authority), REQUESTER, method="internal"))
        if not isinstance(outcome, Issued):
            self._keys.discard(key_ref)
            raise ConfigurationError(f"cannot issue the CMP protection certificate of "
                                     f"{authority}: {outcome}")
        record = ProtectionRecord(authority, key_ref, outcome.certificate, self._clock.now())
        with self._uow() as uow:
            uow.cmp.put_protection(record)
            uow.commit()
        return record

    def _load(self, record: ProtectionRecord) -> SignatureProtection:
        with self._uow() as uow:
            authority = uow.authorities.get(record.authority)
        chain = authority.full_chain if authority is not None else ()
        return SignatureProtection(self._keys.load(record.key_ref), record.certificate, chain)


def _csr(key: Any, authority: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"CMP {authority}")])
    hash_algorithm: Any = signature_hash_for(key)
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hash_algorithm)
    return csr.public_bytes(serialization.Encoding.DER)
