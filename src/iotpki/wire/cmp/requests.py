"""Encoding CMP requests, for clients (the device agent, benchmarks, tests): a CRMF
CertReqMsg with a signature proof of possession (RFC 4211 §4.1, RFC 9483 §4.1.1) and a
signature-protected PKIMessage around it (RFC 9810 §5.1, RFC 9483 §3.2).

Written with the DER helpers directly (X.690 §8; the CMP module uses EXPLICIT tags,
CRMF IMPLICIT ones): a few fixed structures, and several times faster than pyasn1.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.wire.cmp.algorithms import signature_algorithm_oid
from iotpki.wire.der import (
    BIT_STRING,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    generalized_time,
    tlv,
)
from iotpki.wire.der import object_identifier as _oid
from iotpki.wire.keys import signature_hash_for
from iotpki.wire.signature import sign_data

_BODY_TAGS = {"ir": 0xA0, "cr": 0xA2, "kur": 0xA7}
_IMPLICIT_CONFIRM = tlv(SEQUENCE, tlv(SEQUENCE, bytes.fromhex("06082b0601050507040d") + b"\x05\x00"))


def _signature(key: Any, data: bytes) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier DER, BIT STRING DER) of a signature by `key` over `data`."""
    algorithm = tlv(SEQUENCE, _oid(signature_algorithm_oid(key)))
    return algorithm, tlv(BIT_STRING, b"\x00" + sign_data(key, data, signature_hash_for(key)))


def encode_cert_req_msg(new_key: Any, subject: x509.Name, cert_req_id: int = 0) -> bytes:
    """CertReqMsg: template with subject and public key, POPOSigningKey by `new_key`."""
    spki = new_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    template = tlv(SEQUENCE, tlv(0xA5, subject.public_bytes()) + bytes((0xA6,)) + spki[1:])
    cert_request = tlv(SEQUENCE, tlv(INTEGER, bytes((cert_req_id,))) + template)
    algorithm, signature = _signature(new_key, cert_request)
    return tlv(SEQUENCE, cert_request + tlv(0xA1, algorithm + signature))


def encode_signed_request(kind: str, cert_req_msg: bytes, key: Any,
                          chain: tuple[x509.Certificate, ...], now: datetime,
                          implicit_confirm: bool = True) -> bytes:
    """A PKIMessage (ir, cr or kur) signed by `key`; `chain[0]` is its certificate."""
    signer = chain[0]
    algorithm, _ = _signature(key, b"")
    header = tlv(SEQUENCE, b"".join((
        tlv(INTEGER, b"\x02"), tlv(0xA4, signer.subject.public_bytes()),
        tlv(0xA4, tlv(SEQUENCE, b"")), tlv(0xA0, generalized_time(now)),
        tlv(0xA1, algorithm), _sender_kid(signer),
        tlv(0xA4, tlv(OCTET_STRING, os.urandom(16))), tlv(0xA5, tlv(OCTET_STRING, os.urandom(16))),
        tlv(0xA8, _IMPLICIT_CONFIRM) if implicit_confirm else b"")))
    body = tlv(_BODY_TAGS[kind], tlv(SEQUENCE, cert_req_msg))
    _, protection = _signature(key, tlv(SEQUENCE, header + body))
    extra = b"".join(c.public_bytes(serialization.Encoding.DER) for c in chain)
    return tlv(SEQUENCE, header + body + tlv(0xA0, protection) + tlv(0xA1, tlv(SEQUENCE, extra)))


def _sender_kid(certificate: x509.Certificate) -> bytes:
    try:
        kid = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return b""
    return tlv(0xA2, tlv(OCTET_STRING, kid.digest))
