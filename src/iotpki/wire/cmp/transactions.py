"""Certificate confirmation (RFC 9810 §5.3.18, RFC 9483 §4.1.1): the certHash a client puts
in certConf is the hash of the DER certificate, with the hashAlg it names (cmp2021), else
the hash of the certificate's signature algorithm (SHA-512 for Ed25519, RFC 9481 §2)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.wire.cmp.algorithms import HASHES


def cert_hash(certificate: x509.Certificate, hash_algorithm: str | None) -> bytes:
    if hash_algorithm is not None and hash_algorithm in HASHES:
        algorithm: hashes.HashAlgorithm = HASHES[hash_algorithm]()
    else:
        algorithm = certificate.signature_hash_algorithm or hashes.SHA512()
    digest = hashes.Hash(algorithm)
    digest.update(certificate.public_bytes(Encoding.DER))
    return digest.finalize()
