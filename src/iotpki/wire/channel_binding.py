"""Linking identity and proof of possession (RFC 7030 §3.5): the client puts the TLS
channel binding of its session, base64 (RFC 4648 §4), into the CSR's challengePassword
attribute (PKCS #9, RFC 2985 §5.4.1); the server compares it with its side of the session.

- TLS 1.2: `tls-unique` (RFC 5929 §3), the first Finished message of the handshake.
- TLS 1.3: `tls-exporter` (RFC 9266), 32 bytes exported with the label
  "EXPORTER-Channel-Binding" and no context. tls-unique is undefined there.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from cryptography import x509
from cryptography.x509.oid import AttributeOID

from iotpki.wire.errors import DecodeError


def challenge_password(csr_der: bytes) -> str | None:
    """The challengePassword of a DER PKCS#10 request, if it carries one."""
    try:
        csr = x509.load_der_x509_csr(csr_der)
        value = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
    except x509.AttributeNotFound:
        return None
    except ValueError as exc:
        raise DecodeError(f"malformed CSR attributes: {exc}") from exc
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("challengePassword is not UTF-8 text") from exc


def encode_channel_binding(binding: bytes) -> str:
    """The challengePassword a client puts into its CSR for `binding`."""
    return base64.b64encode(binding).decode()


def binding_matches(password: str, binding: bytes) -> bool:
    """Whether `password` is the base64 of `binding` (compared in constant time)."""
    try:
        presented = base64.b64decode("".join(password.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(presented, binding)
