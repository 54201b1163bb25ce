"""The pkcsPKIEnvelope (RFC 8894 §3.2.2): a CMS EnvelopedData (RFC 5652 §6) holding the
message data, encrypted for the RA (requests) or for the requester (CertRep).

Key transport is RSA (§3.2.2: "the key transport ... MUST be RSA"): PKCS #1 v1.5
(rsaEncryption), which every SCEP client speaks, and RSAES-OAEP when a client sends it.
The recipient is named by issuerAndSerialNumber (what SCEP clients match on, some by the
serial alone).

Content encryption: AES-CBC (128, 192, 256; §3.5.2 capability "AES"). DES-CBC and
three-key DES-EDE3-CBC (§3.5.2 "DES3", §2.9: single DES is "totally insecure") only when
the caller allows legacy algorithms; otherwise they are refused as badAlg.

The private key only has to offer `decrypt(ciphertext, padding)`: a key held in a token
works the same as a software key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5652

from iotpki.wire.cms_envelope import algorithm_id, content_info, oid
from iotpki.wire.decoding import decoding
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, tlv
from iotpki.wire.scep.attributes import FailInfo
from iotpki.wire.scep.failure import SCEPFailure, WrongRecipientError

__all__ = ["AES128", "AES256", "DES", "DES3", "ContentCipher", "OpenedEnvelope", "encode_envelope",
           "open_envelope"]

SET = 0x31
ID_DATA = "1.2.840.113549.1.7.1"
ID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSAES_OAEP = "1.2.840.113549.1.1.7"
_NULL = b"\x05\x00"


@dataclass(frozen=True)
class ContentCipher:
    """A content-encryption algorithm: its OID, key size and whether it is legacy."""

    name: str
    oid: str
    key_size: int
    legacy: bool = False

    def algorithm(self, key: bytes) -> BlockCipherAlgorithm:
        if self.legacy:
            return TripleDES(key * 3 if len(key) == 8 else key)
        return algorithms.AES(key)

    @property
    def block_size(self) -> int:
        return 8 if self.legacy else 16


AES128 = ContentCipher("aes128-cbc", "2.16.840.1.101.3.4.1.2", 16)
AES192 = ContentCipher("aes192-cbc", "2.16.840.1.101.3.4.1.22", 24)
AES256 = ContentCipher("aes256-cbc", "2.16.840.1.101.3.4.1.42", 32)
DES3 = ContentCipher("des-ede3-cbc", "1.2.840.113549.3.7", 24, legacy=True)
DES = ContentCipher("des-cbc", "1.3.14.3.2.7", 8, legacy=True)
CIPHERS = {c.oid: c for c in (AES128, AES192, AES256, DES3, DES)}

_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1, "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384, "2.16.840.1.101.3.4.2.3": hashes.SHA512}


@dataclass(frozen=True)
class OpenedEnvelope:
    content: bytes
    cipher: ContentCipher  # what the sender used: the reply uses the same


def open_envelope(data: bytes, recipient: x509.Certificate, key: Any,
                  allow_legacy: bool = False) -> OpenedEnvelope:
    """The content of the ContentInfo(EnvelopedData) `data` for `recipient` (whose private
    key is `key`). Raise `DecodeError` for a structure that does not parse, `SCEPFailure`
    (badAlg, badMessageCheck) for one that cannot be opened."""
    with decoding("pkcsPKIEnvelope"):
        info, rest = ber_decoder.decode(data, asn1Spec=rfc5652.ContentInfo())
        if rest:
            raise ValueError("trailing bytes after the ContentInfo")
        if str(info["contentType"]) != ID_ENVELOPED_DATA:
            raise ValueError("pkcsPKIEnvelope is not an EnvelopedData")
        enveloped, _ = ber_decoder.decode(bytes(info["content"]),
                                          asn1Spec=rfc5652.EnvelopedData())
        encrypted = enveloped["encryptedContentInfo"]
        algorithm = str(encrypted["contentEncryptionAlgorithm"]["algorithm"])
        parameters = encrypted["contentEncryptionAlgorithm"]["parameters"]
        iv = (bytes(ber_decoder.decode(bytes(parameters), asn1Spec=univ.OctetString())[0])
              if parameters.isValue else b"")
        if not encrypted["encryptedContent"].isValue:
            raise ValueError("pkcsPKIEnvelope has no encrypted content")
        ciphertext = bytes(encrypted["encryptedContent"])
        transport = _recipient_info(enveloped["recipientInfos"], recipient)
    cipher = _cipher(algorithm, allow_legacy)
    if len(iv) != cipher.block_size:
        raise SCEPFailure(FailInfo.BAD_ALG, f"{cipher.name} needs a {cipher.block_size}-octet IV")
    cek = _decrypt_key(transport, key)
    if len(cek) != cipher.key_size and not (cipher is DES3 and len(cek) == 8):
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "the content-encryption key cannot be "
                                                      "recovered with the RA key")
    return OpenedEnvelope(_decrypt_content(cipher, cek, iv, ciphertext), cipher)


def _cipher(algorithm: str, allow_legacy: bool) -> ContentCipher:
    cipher = CIPHERS.get(algorithm)
    if cipher is None:
        raise SCEPFailure(FailInfo.BAD_ALG, f"content encryption {algorithm} is not supported "
                                            f"(AES-CBC)")
    if cipher.legacy and not allow_legacy:
        raise SCEPFailure(FailInfo.BAD_ALG, f"{cipher.name} is refused on this endpoint: use "
                                            f"AES (RFC 8894 §3.5.2)")
    return cipher


def _recipient_info(infos: Any, recipient: x509.Certificate) -> Any:
    """The KeyTransRecipientInfo for `recipient`; a message for another RA certificate is
    badMessageCheck."""
    issuer = recipient.issuer.public_bytes()
    for choice in infos:
        if choice.getName() != "ktri":
            continue
        ktri = choice["ktri"]
        rid = ktri["rid"]
        if rid.getName() == "issuerAndSerialNumber":
            named = rid["issuerAndSerialNumber"]
            if (der_encoder.encode(named["issuer"]) == issuer
                    and int(named["serialNumber"]) == recipient.serial_number):
                return ktri
        elif rid.getName() == "subjectKeyIdentifier" and bytes(
                rid["subjectKeyIdentifier"]) == _ski(recipient):
            return ktri
    raise WrongRecipientError("the pkcsPKIEnvelope is not encrypted for this endpoint's RA "
                              "certificate")


def _ski(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _decrypt_key(ktri: Any, key: Any) -> bytes:
    algorithm = str(ktri["keyEncryptionAlgorithm"]["algorithm"])
    encrypted_key = bytes(ktri["encryptedKey"])
    if algorithm == RSA_ENCRYPTION:
        scheme: Any = asymmetric_padding.PKCS1v15()
    elif algorithm == RSAES_OAEP:
        scheme = _oaep(ktri["keyEncryptionAlgorithm"]["parameters"])
    else:
        raise SCEPFailure(FailInfo.BAD_ALG, f"key transport {algorithm} is not supported "
                                            f"(RSA PKCS #1 v1.5 or OAEP)")
    try:
        return bytes(key.decrypt(encrypted_key, scheme))
    except ValueError as exc:
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "the content-encryption key cannot be "
                                                      "recovered with the RA key") from exc


def _oaep(parameters: Any) -> asymmetric_padding.OAEP:
    """RSAES-OAEP-params (RFC 4055 §4.1): hash and MGF1 hash, SHA-1 by default."""
    hash_class: type[hashes.HashAlgorithm] = hashes.SHA1
    if parameters.isValue:
        with decoding("RSAES-OAEP parameters"):
            from pyasn1_alt_modules import rfc4055
            decoded, _ = ber_decoder.decode(bytes(parameters),
                                            asn1Spec=rfc4055.RSAES_OAEP_params())
            if decoded["hashFunc"].isValue:
                found = _OAEP_HASHES.get(str(decoded["hashFunc"]["algorithm"]))
                if found is None:
                    raise SCEPFailure(FailInfo.BAD_ALG, "unsupported OAEP hash")
                hash_class = found
    return asymmetric_padding.OAEP(asymmetric_padding.MGF1(hash_class()), hash_class(), None)


def _decrypt_content(cipher: ContentCipher, cek: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % cipher.block_size:
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "encrypted content is not whole blocks")
    decryptor = Cipher(cipher.algorithm(cek), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(cipher.block_size * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise SCEPFailure(FailInfo.BAD_MESSAGE_CHECK, "the pkcsPKIEnvelope does not decrypt "
                                                      "with the RA key") from exc


# -- encoding -------------------------------------------------------------------------------------

def _integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True))


def encode_envelope(content: bytes, recipient: x509.Certificate,
                    cipher: ContentCipher = AES128) -> bytes:
    """ContentInfo(EnvelopedData) of `content` (id-data) for `recipient`, an RSA certificate:
    key transport RSA PKCS #1 v1.5, recipient by issuerAndSerialNumber (version 0)."""
    public = recipient.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise SCEPFailure(FailInfo.BAD_ALG, "SCEP encrypts to RSA keys only (RFC 8894 §3.2.2)")
    cek, iv = os.urandom(cipher.key_size), os.urandom(cipher.block_size)
    padder = padding.PKCS7(cipher.block_size * 8).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(cipher.algorithm(cek), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    recipient_id = tlv(SEQUENCE, recipient.issuer.public_bytes()
                       + _integer(recipient.serial_number))
    ktri = tlv(SEQUENCE, _integer(0) + recipient_id + algorithm_id(RSA_ENCRYPTION, _NULL)
               + tlv(OCTET_STRING, public.encrypt(cek, asymmetric_padding.PKCS1v15())))
    encrypted_content_info = tlv(SEQUENCE, oid(ID_DATA)
                                 + algorithm_id(cipher.oid, tlv(OCTET_STRING, iv))
                                 + tlv(0x80, encrypted))
    return content_info(ID_ENVELOPED_DATA, tlv(SEQUENCE, _integer(0) + tlv(SET, ktri)
                                               + encrypted_content_info))
