"""Key update requests (RFC 9483 §4.1.3): what a kur must say about the certificate it
updates, checked before the renewal is tried.

- The kur is signed with the certificate to be updated (checked by the server).
- The oldCertId control, when present, names that certificate (issuer and serial);
  another is badCertId.
- The new key differs from the old one: a key update that keeps the key is
  badCertTemplate.
Both are refusals of the request itself: a kup with status rejection (§3.6.4).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.protocols.cmp.refusals import RequestRefusal
from iotpki.wire.cmp.crmf import CRMFRequest
from iotpki.wire.der import tlv
from iotpki.wire.errors import DecodeError

_DIRECTORY_NAME = 0xA4  # GeneralName [4] EXPLICIT Name (RFC 5280 §4.2.1.6)


def check_key_update(asked: Any, signer: x509.Certificate) -> None:
    """`asked` is the kur's CRMF request (None with central key generation)."""
    if not isinstance(asked, CRMFRequest):
        return
    try:
        old = asked.old_cert_id
    except DecodeError as exc:
        raise RequestRefusal("badDataFormat", str(exc)) from exc
    if old is not None and (old[0] != tlv(_DIRECTORY_NAME, signer.issuer.public_bytes())
                            or old[1] != signer.serial_number):
        raise RequestRefusal("badCertId", "RFC 9483 §4.1.3: oldCertId must name the "
                                          "certificate that signs the kur")
    if _spki(asked.public_key()) == _spki(signer.public_key()):
        raise RequestRefusal("badCertTemplate", "RFC 9483 §4.1.3: a key update needs a new "
                                                "key")


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo))
