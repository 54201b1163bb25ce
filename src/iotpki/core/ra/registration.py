"""Registrations (RA records): each authorizes the next identity of one device, or of a
bounded number of devices.

A registration names the identity that may ask (a previous-stage certificate, by
SHA-256 fingerprint or issuer + serial, or the holder of a one-time secret), and what it
may get (authority, profile, subject, SANs). Single use and expiring by default.

A secret registration may instead be a *reusable MAC credential* for a third-party client
(a production line, a device batch): an operator-chosen `reference` the client sends as its
CMP senderKID (or EST user name), and `uses_allowed` > 1 issuances before it is used up.
It stays expiring and cancellable, and every use is an audited issuance.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509


class RegistrationMethod(StrEnum):
    PREVIOUS_STAGE = "previous-stage"  # the device presents the identity of its previous stage
    ONE_TIME_SECRET = "one-time-secret"  # first provisioning: a secret handed to the device
    MANUAL = "manual"  # an operator approves each request


class RegistrationStatus(StrEnum):
    OPEN = "open"
    CONSUMED = "consumed"
    CANCELLED = "cancelled"


MAY_REVOKE = "revocation"  # attribute: the secret may revoke (`Registration.may_revoke`)

# PBKDF2-HMAC-SHA256 (RFC 8018 §5.2). The secret is random (≥ 128 bits), so the hash only has
# to keep a stolen database from yielding usable secrets; the iteration count bounds the cost
# of checking one request.
_SECRET_ITERATIONS = 10_000
MAX_USES = 1_000_000
# A reference is what a client sends as senderKID / user name: printable, no ':' (HTTP Basic),
# and never shaped like a registration id, so that a lookup by either is unambiguous.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+/-]{0,127}")
_REGISTRATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_reference(reference: str) -> None:
    """Raise `ValueError` unless `reference` may name a reusable credential."""
    if not _REFERENCE.fullmatch(reference) or _REGISTRATION_ID.fullmatch(reference.lower()):
        raise ValueError("a reference is 1 to 128 characters of A-Z a-z 0-9 . _ @ + / - "
                         "(starting with a letter or digit), and not a registration id")


def new_registration_id() -> str:
    """A UUID of version 7 (RFC 9562 §5.7): time-ordered, so a million inserted in a bulk
    import land at the end of the index instead of all over it."""
    return new_registration_ids(1)[0]


# RFC 9562 §5.7: the high nibble of octet 6 is the version (7), the two high bits of octet 8
# the variant (10); as byte translations, applied to every id's octets at once.
_VERSION_NIBBLE = bytes(0x70 | (b & 0x0F) for b in range(256))
_VARIANT_BITS = bytes(0x80 | (b & 0x3F) for b in range(256))


def new_registration_ids(count: int) -> list[str]:
    """`count` version-7 UUIDs of this millisecond (one random read for all: a manifest
    import makes a million); within the millisecond their order is random, as RFC 9562
    §6.2 allows."""
    stamp = (time.time_ns() // 1_000_000).to_bytes(6, "big").hex()
    random = bytearray(os.urandom(10 * count))  # octets 6..15 of every id
    random[0::10] = random[0::10].translate(_VERSION_NIBBLE)
    random[2::10] = random[2::10].translate(_VARIANT_BITS)
    digits = random.hex()
    prefix = f"{stamp[:8]}-{stamp[8:]}-"
    return [f"{prefix}{digits[i:i + 4]}-{digits[i + 4:i + 8]}-{digits[i + 8:i + 20]}"
            for i in range(0, 20 * count, 20)]


def issuer_serial_key(issuer: str, serial: str) -> str:
    """One lookup key for "issuer + serial" (SHA-256 of the normalized pair)."""
    return hashlib.sha256(f"{issuer}\n{serial.lower().lstrip('0')}".encode()).hexdigest()


def identity_key(fingerprint: str | None, issuer: str | None, serial: str | None) -> str:
    """The indexed key of a previous-stage identity: its fingerprint when known, else the
    issuer/serial key. A presented certificate is looked up under both."""
    if fingerprint:
        return fingerprint.lower().replace(":", "")
    if issuer and serial:
        return issuer_serial_key(issuer, serial)
    raise ValueError("an identity is named by a SHA-256 fingerprint, or by issuer and serial")


def new_secret() -> str:
    return secrets.token_urlsafe(18)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, _SECRET_ITERATIONS)
    return f"pbkdf2-sha256${_SECRET_ITERATIONS}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2-sha256":
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(candidate.hex(), digest)


@dataclass(frozen=True)
class Registration:
    id: str
    organization: str
    authority: str
    profile: str
    method: RegistrationMethod
    expires_at: datetime
    created_at: datetime
    created_by: str
    subject: x509.Name | None = None  # None: the CSR's subject, checked by the profile
    sans: tuple[x509.GeneralName, ...] | None = None  # None: the CSR's SANs
    identity_fingerprint: str | None = None  # previous-stage certificate, SHA-256 hex
    identity_issuer: str | None = None  # or its issuer (RFC 4514) ...
    identity_serial: str | None = None  # ... and serial (hex)
    identity_key: str | None = None  # what enrollment looks up; see `identity_key()`
    secret_hash: str | None = field(default=None, repr=False)
    secret_sealed: bytes | None = field(default=None, repr=False)  # for CMP MAC protection
    status: RegistrationStatus = RegistrationStatus.OPEN
    consumed_at: datetime | None = None
    certificate: str | None = None  # fingerprint of the certificate it produced
    manifest: str | None = None  # delivery id of the manifest it came from
    component_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    failed_secrets: int = 0  # wrong secrets presented for it (issue 15 item 10)
    locked_at: datetime | None = None  # locked after too many; an operator unlocks it
    reference: str | None = None  # the client's senderKID / user name (reusable credential)
    uses_allowed: int = 1  # issuances before it is used up
    uses: int = 0

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def may_revoke(self) -> bool:
        """Whether its secret may also revoke the certificates it could have issued (a CMP
        rr MAC-protected with it, RFC 9483 §4.2); set by the RA that made it."""
        return self.attributes.get(MAY_REVOKE) is True
