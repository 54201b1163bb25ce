"""More CMP requests for clients (device agent, tests): a CertReqMsg asking for central key
generation (RFC 9483 §4.1.6), MAC-protected PKIMessages (RFC 9810 §5.1.3.1 PasswordBasedMac,
RFC 9481 §6.1.1 PBMAC1), and certConf (RFC 9483 §4.1.1). DER written by hand like
`requests.py` (CMP module: EXPLICIT tags; CRMF: IMPLICIT).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Protocol

from cryptography import x509

from iotpki.wire.cmp.requests import _IMPLICIT_CONFIRM
from iotpki.wire.cms_envelope import oid as _oid
from iotpki.wire.der import INTEGER, OCTET_STRING, SEQUENCE, generalized_time, tlv

_BODY_TAGS = {"ir": 0xA0, "cr": 0xA2, "kur": 0xA7, "certConf": 0xB8, "genm": 0xB5}


class MACProtector(Protocol):
    def algorithm(self) -> tuple[str, bytes | None]: ...

    def protect(self, data: bytes) -> bytes: ...


def encode_keygen_cert_req_msg(subject: x509.Name, key_algorithm: bytes | None = None,
                               cert_req_id: int = 0) -> bytes:
    """CertReqMsg without a public key and without POP (RFC 9483 §4.1.6): `key_algorithm`
    (DER AlgorithmIdentifier) asks for a key type, with a zero-length subjectPublicKey."""
    key = b""
    if key_algorithm is not None:
        key = tlv(0xA6, key_algorithm + tlv(0x03, b"\x00"))  # publicKey [6] IMPLICIT SPKI
    template = tlv(SEQUENCE, tlv(0xA5, subject.public_bytes()) + key)
    return tlv(SEQUENCE, tlv(SEQUENCE, tlv(INTEGER, bytes((cert_req_id,))) + template))


def encode_cert_conf(cert_hash: bytes, cert_req_id: int = 0) -> bytes:
    """CertConfirmContent with one accepting CertStatus (RFC 9483 §4.1.1)."""
    status = tlv(SEQUENCE, tlv(OCTET_STRING, cert_hash) + tlv(INTEGER, bytes((cert_req_id,))))
    return tlv(SEQUENCE, status)


def encode_mac_request(kind: str, content: bytes, protector: MACProtector, sender_kid: bytes,
                       now: datetime, transaction_id: bytes | None = None,
                       recip_nonce: bytes | None = None, implicit_confirm: bool = False,
                       sender: x509.Name | None = None) -> bytes:
    """A PKIMessage whose body `kind` holds `content` (the body's inner DER), MAC-protected
    by `protector` with the registration reference as senderKID (RFC 9483 §3.2)."""
    oid, parameters = protector.algorithm()
    algorithm = tlv(SEQUENCE, _oid(oid) + (parameters or b""))
    header = tlv(SEQUENCE, b"".join((
        tlv(INTEGER, b"\x02"),
        tlv(0xA4, (sender or x509.Name([])).public_bytes()),
        tlv(0xA4, tlv(SEQUENCE, b"")), tlv(0xA0, generalized_time(now)), tlv(0xA1, algorithm),
        tlv(0xA2, tlv(OCTET_STRING, sender_kid)),
        tlv(0xA4, tlv(OCTET_STRING, transaction_id or os.urandom(16))),
        tlv(0xA5, tlv(OCTET_STRING, os.urandom(16))),
        tlv(0xA6, tlv(OCTET_STRING, recip_nonce)) if recip_nonce else b"",
        tlv(0xA8, _IMPLICIT_CONFIRM) if implicit_confirm else b"")))
    body = tlv(_BODY_TAGS[kind], content)
    mac = protector.protect(tlv(SEQUENCE, header + body))
    return tlv(SEQUENCE, header + body + tlv(0xA0, tlv(0x03, b"\x00" + mac)))
