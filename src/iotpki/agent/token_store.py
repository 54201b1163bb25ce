"""The device's key store with its keys on a PKCS#11 token (`agent.token_key`).

The layout is the file store's (`agent.keystore`), with the key file replaced by the key's
RFC 7512 URI: each version's key is a new token object labelled `<object>-<version>`, made
inside the token, sensitive and never extractable, so a renewal rotates the key as it does
in files and a crash mid-renewal still leaves `current` on a matching key and chain.
Pruning an old version destroys its key objects on the token (private and public) before
its directory goes, so a device renewing for years does not fill its token.

```
<dir>/archive/0002/key.uri     pkcs11:token=device;object=identity-0002 (no PIN)
<dir>/archive/0002/chain.pem   certificate + intermediates
<dir>/current -> archive/0002
```

A token key cannot be handed to a TLS stack as a file: EST renewal (TLS client
authentication with the current key) needs the file store; CMP signs its messages with the
key object and works with either (docs/agent.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from iotpki.agent.keystore import (
    FileKeyStore,
    KeyStoreError,
    PendingKey,
    same_public_key,
    write_atomic,
)
from iotpki.agent.token_key import TokenKeyError, destroy_token_key, open_token_key
from iotpki.wire.keys import key_type_of
from iotpki.wire.pkcs11_uri import decode_pkcs11_uri, encode_pkcs11_uri

URI_FILE = "key.uri"


class TokenKeyStore(FileKeyStore):
    """Keys on the token `key_uri` names (`object=` is the label's stem); chains in files."""

    def __init__(self, directory: Path, key_uri: str, module: str,
                 pin: str | None = None) -> None:
        super().__init__(directory)
        base = decode_pkcs11_uri(key_uri)
        if not base.object:
            raise KeyStoreError("the token key URI needs object=<label stem> for the device keys")
        self._base = base
        self._module = module
        self._pin = pin

    def _read_key(self, version_dir: Path, chain: Sequence[x509.Certificate]) -> object:
        uri = (version_dir / URI_FILE).read_text().strip()
        key = self._open(uri, key_type_of(chain[0].public_key()))
        if not same_public_key(key, chain[0]):
            raise KeyStoreError(f"the token key {uri} does not match the current certificate")
        return key

    def _key_file(self, version_dir: Path) -> Path | None:
        return None  # the key never leaves the token

    def new_key(self, key_type: str) -> PendingKey:
        version_dir = self._new_version_dir()
        uri = encode_pkcs11_uri(dataclasses.replace(
            self._base, object=f"{self._base.object}-{version_dir.name}", id=None))
        key = self._open(uri, key_type)  # generated inside the token on first use
        write_atomic(version_dir / URI_FILE, (uri + "\n").encode(), 0o600)
        return PendingKey(key, version_dir.name)

    def _discard_key(self, version_dir: Path) -> None:
        """The version's key objects leave the token first: a failure keeps the directory
        (and its URI), so the next prune tries again."""
        uri_file = version_dir / URI_FILE
        if not uri_file.exists():  # a version whose key was never made
            return
        try:
            destroy_token_key(uri_file.read_text().strip(), self._module, self._pin)
        except TokenKeyError as exc:
            raise KeyStoreError(str(exc)) from exc

    def _open(self, uri: str, key_type: str) -> object:
        try:
            return open_token_key(uri, self._module, self._pin, key_type)
        except TokenKeyError as exc:
            raise KeyStoreError(str(exc)) from exc
