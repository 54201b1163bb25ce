"""Encrypted server-side key generation in EST (RFC 7030 §4.4.1.1, §4.4.1.2, §4.4.2).

- A serverkeygen CSR asks for the key to be encrypted with the attribute
  DecryptKeyIdentifier (id-aa-decryptKeyID, a symmetric key known to both sides) or
  AsymmetricDecryptKeyIdentifier (id-aa-asymmDecryptKeyID, the subjectKeyIdentifier of the
  client certificate whose key decrypts it). `key_encryption_request` reads them.
- The answer's key part is then `application/pkcs7-mime; smime-type=server-generated-key`:
  base64 of a ContentInfo holding EnvelopedData(SignedData(AsymmetricKeyPackage))
  (`iotpki.wire.key_package`), beside the usual certs-only part.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from iotpki.wire.decoding import decoding
from iotpki.wire.errors import DecodeError
from iotpki.wire.est import CERTS_ONLY, certificate_part, decode_multipart, encode_multipart

SERVER_GENERATED_KEY = "application/pkcs7-mime; smime-type=server-generated-key"
DECRYPT_KEY_ID = x509.ObjectIdentifier("1.2.840.113549.1.9.16.2.37")
ASYMMETRIC_DECRYPT_KEY_ID = x509.ObjectIdentifier("1.2.840.113549.1.9.16.2.54")


@dataclass(frozen=True)
class KeyEncryptionRequest:
    """What the CSR asked for: a symmetric key id, or a certificate's subjectKeyIdentifier."""

    key_id: bytes
    asymmetric: bool


def key_encryption_request(csr_der: bytes) -> KeyEncryptionRequest | None:
    """The §4.4.1.1 / §4.4.1.2 attribute of a serverkeygen CSR, if it carries one."""
    with decoding("CSR attributes"):
        csr = x509.load_der_x509_csr(csr_der)
        attributes = {a.oid: a.value for a in csr.attributes}
    if ASYMMETRIC_DECRYPT_KEY_ID in attributes:
        return KeyEncryptionRequest(attributes[ASYMMETRIC_DECRYPT_KEY_ID], True)
    if DECRYPT_KEY_ID in attributes:
        return KeyEncryptionRequest(attributes[DECRYPT_KEY_ID], False)
    return None


def encode_encrypted_serverkeygen(enveloped_content_info: bytes,
                                  certificate: x509.Certificate) -> tuple[str, bytes]:
    """(Content-Type, body) of a §4.4.2 answer with the key encrypted (RFC 2046 §5.1.1
    framing, `iotpki.wire.est.encode_multipart`)."""
    return encode_multipart(((SERVER_GENERATED_KEY, enveloped_content_info),
                             (CERTS_ONLY, pkcs7.serialize_certificates([certificate],
                                                                       Encoding.DER))))


def decode_encrypted_serverkeygen(content_type: str, body: bytes) -> tuple[bytes, x509.Certificate]:
    """(ContentInfo DER of the encrypted key, certificate) of a §4.4.2 answer (client side)."""
    found = decode_multipart(content_type, body)
    if SERVER_GENERATED_KEY not in found:
        raise DecodeError("answer lacks the server-generated-key part")
    return found[SERVER_GENERATED_KEY], certificate_part(found)
