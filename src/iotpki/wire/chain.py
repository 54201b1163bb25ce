"""Certificate bundles: PEM sequences and certs-only PKCS#7 (RFC 2315 / RFC 5652 §5)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from iotpki.wire.decoding import decoding


def encode_pem_chain(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def encode_pkcs7_chain(certificates: Sequence[x509.Certificate], *, pem: bool = False) -> bytes:
    """A degenerate SignedData with the certificates only (as EST /cacerts uses it)."""
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return pkcs7.serialize_certificates(list(certificates), encoding)


def decode_certificates(data: bytes) -> list[x509.Certificate]:
    """One or more certificates from PEM, or a single DER certificate."""
    with decoding("certificate"):
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
