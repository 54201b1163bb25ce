"""Sealed storage of registration secrets: AES-256-GCM (NIST SP 800-38D) under a key derived
with HKDF-SHA256 (RFC 5869) from the CA key passphrase.

One-time secrets are stored hashed for checking a password (HTTP Basic); a CMP server
must recompute a PasswordBasedMac (RFC 9810 §5.1.3.1) and so needs the secret itself.
The sealed form is `version (1) || nonce (12) || ciphertext+tag`; the registration id is
not bound (the secret alone is sealed), the GCM tag detects any alteration.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from iotpki.keys.errors import KeyProtectionError

_VERSION = b"\x01"
_INFO = b"iotpki registration secret sealing v1"
_SALT = b"iotpki/sealing"


class PassphraseSealer:
    def __init__(self, passphrase: bytes) -> None:
        key = HKDF(hashes.SHA256(), 32, _SALT, _INFO).derive(passphrase)
        self._aead = AESGCM(key)

    def seal(self, secret: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret, _VERSION)

    def unseal(self, sealed: bytes) -> bytes:
        if len(sealed) < 29 or sealed[:1] != _VERSION:
            raise KeyProtectionError("not a sealed secret of this version")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], _VERSION)
        except InvalidTag as exc:
            raise KeyProtectionError("sealed secret altered, or sealed under another "
                                     "passphrase") from exc
