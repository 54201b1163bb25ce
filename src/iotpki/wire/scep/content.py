"""What the pkcsPKIEnvelope of each request holds (RFC 8894 §3.3):

- PKCSReq, RenewalReq (§3.3.1): a PKCS #10 request;
- CertPoll (§3.3.3): IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name };
- GetCert, GetCRL (§3.3.4): IssuerAndSerialNumber (RFC 5652 §10.2.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import namedtype, univ
from pyasn1_alt_modules import rfc5280, rfc5652

from iotpki.wire.decoding import decoding, loaded_csr
from iotpki.wire.der import INTEGER, SEQUENCE, tlv

__all__ = ["IssuerAndSerial", "IssuerAndSubject", "decode_csr_content",
           "decode_issuer_and_serial", "decode_issuer_and_subject",
           "encode_issuer_and_serial", "encode_issuer_and_subject"]


class _IssuerAndSubject(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("issuer", rfc5280.Name()),
        namedtype.NamedType("subject", rfc5280.Name()))


@dataclass(frozen=True)
class IssuerAndSubject:
    issuer: bytes  # DER Name
    subject: bytes  # DER Name


@dataclass(frozen=True)
class IssuerAndSerial:
    issuer: bytes  # DER Name
    serial: int


def decode_csr_content(data: bytes) -> bytes:
    """The DER PKCS #10 request of a PKCSReq or RenewalReq (`DecodeError` otherwise)."""
    with decoding("PKCS #10 request in the pkcsPKIEnvelope"):
        loaded_csr(x509.load_der_x509_csr(data))
    return data


def decode_issuer_and_subject(data: bytes) -> IssuerAndSubject:
    with decoding("IssuerAndSubject"):
        decoded, rest = ber_decoder.decode(data, asn1Spec=_IssuerAndSubject())
        if rest:
            raise ValueError("trailing bytes")
        return IssuerAndSubject(der_encoder.encode(decoded["issuer"]),
                                der_encoder.encode(decoded["subject"]))


def decode_issuer_and_serial(data: bytes) -> IssuerAndSerial:
    with decoding("IssuerAndSerialNumber"):
        decoded, rest = ber_decoder.decode(data, asn1Spec=rfc5652.IssuerAndSerialNumber())
        if rest:
            raise ValueError("trailing bytes")
        return IssuerAndSerial(der_encoder.encode(decoded["issuer"]),
                               int(decoded["serialNumber"]))


def encode_issuer_and_subject(issuer: x509.Name, subject: x509.Name) -> bytes:
    return tlv(SEQUENCE, issuer.public_bytes() + subject.public_bytes())


def encode_issuer_and_serial(issuer: x509.Name, serial: int) -> bytes:
    body = serial.to_bytes((serial.bit_length() + 8) // 8 or 1, "big", signed=True)
    return tlv(SEQUENCE, issuer.public_bytes() + tlv(INTEGER, body))
