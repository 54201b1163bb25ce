"""Key ports: the key backends the CA signs with (`KeyRing`) and the sealer of secrets at rest.
The `keys` package implements them."""

from __future__ import annotations

from typing import Any, Protocol


class KeyRing(Protocol):
    """Key backends behind one face. A key reference names its backend (`software:…`, `pkcs11:…`).

    `load` returns an object with the `cryptography` private-key interface, so
    `CertificateBuilder.sign()` works whatever holds the key. A *location* says where a new
    key goes: None (the default backend), a backend name, or a backend URI (a token).
    """

    def check(self, key_type: str, location: str | None = None) -> None:
        """Raise if a `key_type` key cannot be made at `location`; called before any write."""
        ...

    def generate(self, key_type: str, label: str, location: str | None = None,
                 decrypt: bool = False) -> str:
        """A new key; `decrypt`: it also decrypts (RSA key transport, a SCEP RA key), which a
        token allows only for keys made so."""
        ...

    def import_private_key(self, key: Any, label: str, location: str | None = None) -> str: ...

    def load(self, key_ref: str) -> Any: ...

    def discard(self, key_ref: str) -> None:
        """Remove a key whose authority could not be created (no half-created authority)."""
        ...

    def location_of(self, key_ref: str) -> str:
        """Where a key is held, as a location for keys that belong with it."""
        ...


class SecretSealer(Protocol):
    """Authenticated encryption of registration secrets at rest (a key backend provides it);
    the CMP server unseals a one-time secret to recompute a PasswordBasedMac."""

    def seal(self, secret: bytes) -> bytes: ...

    def unseal(self, sealed: bytes) -> bytes:
        """Raise `PKIError` if the sealed value was altered or sealed under another key."""
        ...
