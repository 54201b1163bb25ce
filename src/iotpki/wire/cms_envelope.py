"""CMS EnvelopedData (RFC 5652 §6) for delivering a server-generated private key, with the
three recipient kinds RFC 9483 §4.1.6 asks for and the algorithms of RFC 9481:

- KeyTransRecipientInfo (§6.2.1) for an RSA recipient: RSAES-OAEP with SHA-256 and
  MGF1-SHA-256 (RFC 9481 §4.2, RFC 8017 §7.1).
- KeyAgreeRecipientInfo (§6.2.2) for an EC recipient: ephemeral-static ECDH with the
  X9.63 KDF over SHA-256 (dhSinglePass-stdDH-sha256kdf-scheme, RFC 5753 §3.1, RFC 9481
  §4.1.1) and AES-256 key wrap (RFC 3394, RFC 9481 §4.3).
- PasswordRecipientInfo (§6.2.4) for a shared secret: PBKDF2 with HMAC-SHA256 (RFC 8018
  §5.2, RFC 9481 §4.4) and the PWRI-KEK wrap of RFC 3211 §2.3 over AES-256-CBC. RFC 9481
  §4.3 names plain AES key wrap here; PWRI-KEK is the one every CMS library decrypts
  (OpenSSL's `cms -pwri_password` accepts no other), so that is what we send.

The content is encrypted with AES-256-CBC (RFC 9481 §5, RFC 3565). Written with the DER
helpers: a handful of fixed structures, checked against `openssl cms -decrypt` in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, tlv
from iotpki.wire.errors import PKIError

SET, BIT_STRING, NULL = 0x31, 0x03, b"\x05\x00"
ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
AES256_CBC = "2.16.840.1.101.3.4.1.42"
AES256_WRAP = "2.16.840.1.101.3.4.1.45"
RSAES_OAEP = "1.2.840.113549.1.1.7"
MGF1 = "1.2.840.113549.1.1.8"
SHA256 = "2.16.840.1.101.3.4.2.1"
ECDH_SHA256_KDF = "1.3.132.1.11.1"  # dhSinglePass-stdDH-sha256kdf-scheme
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
PBKDF2 = "1.2.840.113549.1.5.12"
HMAC_SHA256 = "1.2.840.113549.2.9"
PWRI_KEK = "1.2.840.113549.1.9.16.3.9"
PWRI_ITERATIONS = 10_000
_BLOCK = 16


class EnvelopeError(PKIError):
    """A recipient the key cannot be enveloped for (unsupported key type)."""


def oid(dotted: str) -> bytes:
    """DER of an OBJECT IDENTIFIER (X.690 §8.19)."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray()
    for number in [40 * parts[0] + parts[1], *parts[2:]]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.insert(0, 0x80 | (number & 0x7F))
            number >>= 7
        body.extend(chunk)
    return tlv(0x06, bytes(body))


def algorithm_id(dotted: str, parameters: bytes = b"") -> bytes:
    return tlv(SEQUENCE, oid(dotted) + parameters)


def _integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True))


def content_info(content_type: str, content: bytes) -> bytes:
    """ContentInfo (RFC 5652 §3): what `openssl cms` and S/MIME bodies carry."""
    return tlv(SEQUENCE, oid(content_type) + tlv(0xA0, content))


# -- recipients ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CertificateRecipient:
    """The holder of `certificate`'s private key (RSA: key transport, EC: key agreement)."""

    certificate: x509.Certificate


@dataclass(frozen=True)
class PasswordRecipient:
    """Whoever knows `password` (RFC 5652 §6.2.4); `iterations` of PBKDF2."""

    password: bytes
    iterations: int = PWRI_ITERATIONS


Recipient = CertificateRecipient | PasswordRecipient


def _recipient_identifier(certificate: x509.Certificate) -> tuple[bytes, bool]:
    """(rid, is_ski): subjectKeyIdentifier [0] if the certificate has one, else
    issuerAndSerialNumber (RFC 5652 §6.2.1)."""
    try:
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return tlv(0x80, ski.value.digest), True
    except x509.ExtensionNotFound:
        return _issuer_and_serial(certificate), False


def _issuer_and_serial(certificate: x509.Certificate) -> bytes:
    return tlv(SEQUENCE, certificate.issuer.public_bytes() + _integer(certificate.serial_number))


def _key_trans(certificate: x509.Certificate, key: rsa.RSAPublicKey, cek: bytes) -> bytes:
    """KeyTransRecipientInfo with RSAES-OAEP (RFC 4055 §4.1 parameters: SHA-256, MGF1)."""
    rid, by_ski = _recipient_identifier(certificate)
    sha256 = algorithm_id(SHA256)
    parameters = tlv(SEQUENCE, tlv(0xA0, sha256) + tlv(0xA1, algorithm_id(MGF1, sha256)))
    encrypted = key.encrypt(cek, asymmetric_padding.OAEP(
        asymmetric_padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    return tlv(SEQUENCE, _integer(2 if by_ski else 0) + rid
               + algorithm_id(RSAES_OAEP, parameters) + tlv(OCTET_STRING, encrypted))


def _key_agree(certificate: x509.Certificate, key: ec.EllipticCurvePublicKey,
               cek: bytes) -> bytes:
    """KeyAgreeRecipientInfo (RFC 5753 §3.1.1): an ephemeral key on the recipient's curve,
    KEK = X9.63-KDF(Z, ECC-CMS-SharedInfo), the CEK wrapped with AES-256 key wrap."""
    ephemeral = ec.generate_private_key(key.curve)
    shared = ephemeral.exchange(ec.ECDH(), key)
    wrap = algorithm_id(AES256_WRAP)
    shared_info = tlv(SEQUENCE, wrap + tlv(0xA2, tlv(OCTET_STRING, (256).to_bytes(4, "big"))))
    kek = X963KDF(hashes.SHA256(), 32, shared_info).derive(shared)
    point = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
    originator = tlv(0xA0, tlv(0xA1, algorithm_id(EC_PUBLIC_KEY)
                               + tlv(BIT_STRING, b"\x00" + point)))
    rid, by_ski = _recipient_identifier(certificate)
    kari_rid = tlv(0xA0, tlv(OCTET_STRING, rid[2:])) if by_ski else rid  # rKeyId [0]
    encrypted_key = tlv(SEQUENCE, kari_rid + tlv(OCTET_STRING, aes_key_wrap(kek, cek)))
    return tlv(0xA1, _integer(3) + originator + algorithm_id(ECDH_SHA256_KDF, wrap)
               + tlv(SEQUENCE, encrypted_key))


def _password(recipient: PasswordRecipient, cek: bytes) -> bytes:
    """PasswordRecipientInfo [3] (RFC 5652 §6.2.4, RFC 3211 §2)."""
    salt, iv = os.urandom(16), os.urandom(_BLOCK)
    kek = PBKDF2HMAC(hashes.SHA256(), 32, salt, recipient.iterations).derive(recipient.password)
    derivation = oid(PBKDF2) + tlv(SEQUENCE, tlv(OCTET_STRING, salt)
                                   + _integer(recipient.iterations)
                                   + algorithm_id(HMAC_SHA256, NULL))
    kek_algorithm = algorithm_id(PWRI_KEK, algorithm_id(AES256_CBC, tlv(OCTET_STRING, iv)))
    return tlv(0xA3, _integer(0) + tlv(0xA0, derivation) + kek_algorithm
               + tlv(OCTET_STRING, pwri_wrap(kek, iv, cek)))


def pwri_wrap(kek: bytes, iv: bytes, cek: bytes) -> bytes:
    """RFC 3211 §2.3.1: length || check bytes || CEK || random padding to whole blocks (at
    least two), CBC-encrypted twice, the second pass chained on from the first."""
    formatted = bytes((len(cek),)) + bytes(b ^ 0xFF for b in cek[:3]) + cek
    size = max(2 * _BLOCK, -(-len(formatted) // _BLOCK) * _BLOCK)
    formatted += os.urandom(size - len(formatted))
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    first = encryptor.update(formatted)
    return encryptor.update(first) + encryptor.finalize()


def _recipient_info(recipient: Recipient, cek: bytes) -> bytes:
    if isinstance(recipient, PasswordRecipient):
        return _password(recipient, cek)
    key = recipient.certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return _key_trans(recipient.certificate, key, cek)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _key_agree(recipient.certificate, key, cek)
    raise EnvelopeError(f"cannot encrypt to a {type(key).__name__} recipient (RSA or EC only)")


# -- EnvelopedData --------------------------------------------------------------------------------

def encode_enveloped_data(content_type: str, content: bytes, recipient: Recipient) -> bytes:
    """DER of EnvelopedData (RFC 5652 §6.1) holding `content` for one recipient."""
    cek, iv = os.urandom(32), os.urandom(_BLOCK)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    info = _recipient_info(recipient, cek)
    # §6.1: version 3 with a pwri, else 2 (ktri by SKI and kari are not version 0).
    version = 3 if isinstance(recipient, PasswordRecipient) else 2
    encrypted_content_info = tlv(SEQUENCE, oid(content_type)
                                 + algorithm_id(AES256_CBC, tlv(OCTET_STRING, iv))
                                 + tlv(0x80, encrypted))
    return tlv(SEQUENCE, _integer(version) + tlv(SET, info) + encrypted_content_info)
