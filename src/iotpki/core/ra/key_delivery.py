"""Server-generated keys: made here, certified through the single issuance path, handed over
encrypted (RFC 9483 §4.1.6 for CMP, RFC 7030 §4.4.2 for EST), archived only when the
profile says `key_archival: true`.

- The key is of the profile's first key type the request admits.
- It goes back as EnvelopedData(SignedData(AsymmetricKeyPackage)) signed by the
  key-generation authority, a service certificate of the issuing CA
  (`core.ca.service_certificates`): for EST its `key-delivery` key, for CMP its protection
  key (RFC 9483 §4.1.6); for the recipient the protocol names (the requester's
  certificate, or the shared secret of a MAC-protected CMP request).
- Archival (RFC 4210 §5.3.4's "key archive"): the PKCS #8 key sealed with the
  `SecretSealer` (AES-256-GCM, `keys.sealing`) in the `key_archive` table, in the same
  transaction as its audit record. Without archival the key exists only in the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.ports import ArchivedKey, Purpose
from iotpki.core.ca.profile import Profile
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.core.clock import Clock
from iotpki.core.errors import PolicyError, RefusalReason
from iotpki.core.keyring import SecretSealer
from iotpki.core.outcomes import Issued
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.wire.cms_envelope import EnvelopeError, Recipient
from iotpki.wire.key_package import encode_key_delivery
from iotpki.wire.keys import generate_private_key


class KeyDeliveryError(PolicyError):
    """A server-generated key that cannot be made or handed over; nothing was issued."""


@dataclass(frozen=True)
class GeneratedKey:
    key: Any
    key_type: str
    sealed: bytes | None  # the PKCS #8 key sealed for the archive, when the profile says so

    @property
    def pkcs8(self) -> bytes:
        return bytes(self.key.private_bytes(serialization.Encoding.DER,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))


class KeyDelivery:
    def __init__(self, uow: UnitOfWorkFactory, profiles: Mapping[str, Profile],
                 certificates: ServiceCertificates, sealer: SecretSealer | None,
                 clock: Clock) -> None:
        self._uow = uow
        self._profiles = profiles
        self._certificates = certificates
        self._sealer = sealer
        self._clock = clock

    def key_types(self, profile_name: str) -> tuple[str, ...]:
        return self._profile(profile_name).key_types

    def _profile(self, profile_name: str) -> Profile:
        profile = self._profiles.get(profile_name)
        if profile is None:
            raise KeyDeliveryError(RefusalReason.UNKNOWN_PROFILE, f"unknown profile {profile_name!r}")
        return profile

    def generate(self, profile_name: str, key_types: tuple[str, ...] | None = None) -> GeneratedKey:
        """A key of the first of `key_types` (default: the profile's) the profile allows;
        sealed for the archive if the profile archives keys."""
        profile = self._profile(profile_name)
        allowed = [t for t in (key_types if key_types is not None else profile.key_types)
                   if t in profile.key_types]
        if not allowed:
            raise KeyDeliveryError(RefusalReason.KEY_NOT_ALLOWED, f"profile {profile.name} "
                                   f"generates only {', '.join(profile.key_types)} keys")
        if profile.key_archival and self._sealer is None:
            raise KeyDeliveryError(RefusalReason.AUTHORITY_CANNOT_ISSUE, "key archival needs "
                                   "the CA passphrase (IOTPKI_CA_PASSPHRASE) to seal keys")
        generated = GeneratedKey(generate_private_key(allowed[0]), allowed[0], None)
        if profile.key_archival:
            assert self._sealer is not None
            return GeneratedKey(generated.key, generated.key_type,
                                self._sealer.seal(generated.pkcs8))
        return generated

    def deliver(self, generated: GeneratedKey, issued: Issued, recipient: Recipient,
                requester: str, signer_purpose: Purpose = Purpose.KEY_DELIVERY) -> bytes:
        """EnvelopedData DER of the key for `recipient`, in SignedData signed with the issuing
        authority's service key for `signer_purpose` (EST §4.4.2: its own key delivery key;
        CMP, RFC 9483 §4.1.6: the protection key); archives the key first if asked."""
        enveloped = self.envelope(generated, issued.record.authority, recipient, signer_purpose)
        self._record(generated, issued, requester)
        return enveloped

    def envelope(self, generated: GeneratedKey, authority: str, recipient: Recipient,
                 signer_purpose: Purpose = Purpose.KEY_DELIVERY) -> bytes:
        """EnvelopedData DER of the key for `recipient`, signed with `authority`'s service key
        for `signer_purpose`. Callable before issuance, so that a key that cannot be handed
        over is refused with nothing issued (RFC 7030 §4.4.2); `record` follows issuance."""
        signer = self._certificates.current(authority, signer_purpose)
        try:
            return encode_key_delivery(generated.pkcs8, signer.key,
                                       (signer.certificate, *signer.chain), recipient)
        except EnvelopeError as exc:
            raise KeyDeliveryError(RefusalReason.UNSUPPORTED_KEY, str(exc)) from exc

    def record(self, generated: GeneratedKey, issued: Issued, requester: str) -> None:
        """Audit (and archive) a key handed over for the certificate just issued."""
        self._record(generated, issued, requester)

    def _record(self, generated: GeneratedKey, issued: Issued, requester: str) -> None:
        now = self._clock.now()
        record = issued.record
        with self._uow() as uow:
            if generated.sealed is not None:
                uow.key_archive.add(ArchivedKey(record.authority, record.serial_hex,
                                                record.fingerprint, generated.sealed, now))
            append_audit(uow.audit, now, AuditRecord(
                "key.server-generated", "success", requester,
                f"{record.authority}:{record.serial_hex}",
                {"key_type": generated.key_type, "archived": generated.sealed is not None}))
            uow.commit()
