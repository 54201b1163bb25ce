"""Key backend errors."""

from __future__ import annotations

from iotpki.wire.errors import PKIError


class KeyProtectionError(PKIError):
    """A CA key that would be, or is, stored without encryption, or a wrong passphrase."""


class KeyNotFoundError(PKIError):
    """A key reference that names no key."""


class TokenError(PKIError):
    """A PKCS#11 token that cannot be used: module or token missing, wrong or locked PIN.
    Messages name the module, token and key label, never the PIN."""
