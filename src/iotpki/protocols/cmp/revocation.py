"""Revocation requests (RFC 9483 §4.2) from an end entity: what the rr must hold, checked
before the certificate is looked up.

- The template names the certificate by issuer and serialNumber (both REQUIRED:
  badDataFormat without); an end entity revokes only the certificate that signs the rr
  (notAuthorized); a subject or publicKey in the template must be that certificate's
  (badCertId).
- crlEntryDetails hold exactly one reasonCode (badDataFormat otherwise); removeFromCRL
  (8) asks to release a certificate on hold (RFC 5280 §5.3.1), any other code revokes.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.protocols.cmp.refusals import CMPFailure, revocation_reason
from iotpki.wire.cmp.messages import RevocationRequest

REMOVE_FROM_CRL = 8


def check_revocation(body: RevocationRequest, signer: x509.Certificate) -> None:
    if body.issuer_der is None or body.serial is None:
        raise CMPFailure("badDataFormat", "RFC 9483 §4.2: the template names issuer and "
                                          "serialNumber")
    if len(body.reasons) != 1:
        raise CMPFailure("badDataFormat", "RFC 9483 §4.2: crlEntryDetails hold exactly one "
                                          "reasonCode")
    if body.serial != signer.serial_number or body.issuer_der != signer.issuer.public_bytes():
        raise CMPFailure("notAuthorized", "an rr may name only the certificate that signs it")
    if body.subject_der is not None and body.subject_der != signer.subject.public_bytes():
        raise CMPFailure("badCertId", "RFC 9483 §4.2: the template's subject is not the "
                                      "certificate's")
    key = signer.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if body.public_key_der is not None and body.public_key_der != key:
        raise CMPFailure("badCertId", "RFC 9483 §4.2: the template's publicKey is not the "
                                      "certificate's")
    if body.reasons[0] != REMOVE_FROM_CRL:
        revocation_reason(body.reasons[0])  # badRequest for a code no rr may ask for


def is_revive(body: RevocationRequest) -> bool:
    return body.reasons == (REMOVE_FROM_CRL,)
