"""The key ring: dispatches a key reference to the backend its scheme names."""

from __future__ import annotations

from typing import Any, Protocol

from iotpki.keys.errors import KeyNotFoundError


class KeyBackend(Protocol):
    def generate(self, key_type: str, label: str) -> str: ...

    def import_private_key(self, key: Any, label: str) -> str: ...

    def load(self, key_ref: str) -> Any: ...

    def discard(self, key_ref: str) -> None: ...


class KeyRing:
    """New keys go to the default backend; existing ones to the backend named in their ref."""

    def __init__(self, backends: dict[str, KeyBackend], default: str) -> None:
        if default not in backends:
            raise ValueError(f"default key backend {default!r} is not configured")
        self._backends = backends
        self._default = default

    def generate(self, key_type: str, label: str) -> str:
        return self._backends[self._default].generate(key_type, label)

    def import_private_key(self, key: Any, label: str) -> str:
        return self._backends[self._default].import_private_key(key, label)

    def load(self, key_ref: str) -> Any:
        return self._backend(key_ref).load(key_ref)

    def discard(self, key_ref: str) -> None:
        self._backend(key_ref).discard(key_ref)

    def _backend(self, key_ref: str) -> KeyBackend:
        scheme = key_ref.partition(":")[0]
        backend = self._backends.get(scheme)
        if backend is None:
            raise KeyNotFoundError(f"no key backend {scheme!r} configured for {key_ref!r}")
        return backend
