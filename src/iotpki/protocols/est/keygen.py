"""RFC 7030 §4.4.1.1 / §4.4.1.2: to whom an encrypted server-generated key can go.

The server shares no symmetric keys with clients, so a DecryptKeyIdentifier is refused
(400, key-encryption-unavailable). An AsymmetricDecryptKeyIdentifier must name the TLS
client certificate of the request (its subjectKeyIdentifier): that is the one certificate
the server has checked and can encrypt to, by key transport (RSA) or key agreement (EC).
"""

from __future__ import annotations

from cryptography import x509

from iotpki.core.errors import RefusalReason as R
from iotpki.wire.errors import DecodeError
from iotpki.wire.est_keygen import key_encryption_request


class KeyRecipientError(Exception):
    def __init__(self, reason: R, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def key_recipient(csr: bytes, client: x509.Certificate | None) -> x509.Certificate | None:
    """The certificate to encrypt the key to, None for a plain PKCS #8 answer."""
    try:
        wanted = key_encryption_request(csr)
    except DecodeError as exc:
        raise KeyRecipientError(R.MALFORMED_REQUEST, str(exc)) from exc
    if wanted is None:
        return None
    if not wanted.asymmetric:
        raise KeyRecipientError(R.KEY_ENCRYPTION_UNAVAILABLE, "DecryptKeyIdentifier: no "
                                "symmetric key is shared with clients here; ask with "
                                "AsymmetricDecryptKeyIdentifier (RFC 7030 §4.4.1.2)")
    if client is None or _key_id(client) != wanted.key_id:
        raise KeyRecipientError(R.KEY_ENCRYPTION_UNAVAILABLE, "AsymmetricDecryptKeyIdentifier "
                                "must be the subjectKeyIdentifier of the TLS client "
                                "certificate")
    # Whether the key can be enveloped to it (RSA, EC) is decided by the core's key delivery,
    # before anything is issued.
    return client


def _key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None
