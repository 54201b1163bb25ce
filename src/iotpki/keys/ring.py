"""The key ring: dispatches a key reference to the backend its scheme names.

A *location* says where a new key goes: None (the default backend), a backend name
(`software`, `pkcs11`), or a backend URI (`pkcs11:token=ca-hsm`, RFC 7512).
"""

from __future__ import annotations

from typing import Any, Protocol

from iotpki.keys.errors import KeyNotFoundError


class KeyBackend(Protocol):
    def check(self, key_type: str, location: str | None = None) -> None: ...

    def generate(self, key_type: str, label: str, location: str | None = None,
                 decrypt: bool = False) -> str: ...

    def import_private_key(self, key: Any, label: str, location: str | None = None) -> str: ...

    def load(self, key_ref: str) -> Any: ...

    def discard(self, key_ref: str) -> None: ...

    def location_of(self, key_ref: str) -> str: ...


class KeyRing:
    """New keys go to the default backend unless a location names another; existing ones to
    the backend named in their ref."""

    def __init__(self, backends: dict[str, KeyBackend], default: str) -> None:
        if default not in backends:
            raise ValueError(f"default key backend {default!r} is not configured")
        self._backends = backends
        self._default = default

    @property
    def default(self) -> str:
        return self._default

    def check(self, key_type: str, location: str | None = None) -> None:
        backend, where = self._where(location)
        backend.check(key_type, where)

    def generate(self, key_type: str, label: str, location: str | None = None,
                 decrypt: bool = False) -> str:
        backend, where = self._where(location)
        return backend.generate(key_type, label, where, decrypt=decrypt)

    def import_private_key(self, key: Any, label: str, location: str | None = None) -> str:
        held = getattr(key, "key_ref", None)  # a key already in a backend stays where it is
        if isinstance(held, str):
            return self._backend(held).import_private_key(key, label, None)
        backend, where = self._where(location)
        return backend.import_private_key(key, label, where)

    def load(self, key_ref: str) -> Any:
        return self._backend(key_ref).load(key_ref)

    def discard(self, key_ref: str) -> None:
        self._backend(key_ref).discard(key_ref)

    def location_of(self, key_ref: str) -> str:
        return self._backend(key_ref).location_of(key_ref)

    def _where(self, location: str | None) -> tuple[KeyBackend, str | None]:
        if location is None:
            return self._backends[self._default], None
        scheme = location.partition(":")[0]
        backend = self._backends.get(scheme)
        if backend is None:
            raise KeyNotFoundError(f"no key backend {scheme!r} configured "
                                   f"(configured: {', '.join(self._backends)})")
        return backend, location if ":" in location else None

    def _backend(self, key_ref: str) -> KeyBackend:
        scheme = key_ref.partition(":")[0]
        backend = self._backends.get(scheme)
        if backend is None:
            raise KeyNotFoundError(f"no key backend {scheme!r} configured for {key_ref!r}")
        return backend
