"""Central key generation for the CMP server (RFC 9483 §4.1.6): which request asks for it,
the PKCS #10 request the issuance path receives, and to whom the key is encrypted.

- §4.1.6.1 / §4.1.6.2: a signature-protected request gets the key for the protection
  certificate's key (key transport for RSA, key agreement for EC).
- §4.1.6.3: a MAC-protected request gets it under the shared secret (PasswordRecipientInfo).
- The key cannot wait for an operator: central key generation with manual approval is
  refused (the key would have to be kept until the poll), as is a p10cr (it has a key).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from iotpki.core.ca.ports import Purpose
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued
from iotpki.core.ra.key_delivery import GeneratedKey, KeyDelivery, KeyDeliveryError
from iotpki.protocols.cmp.refusals import FAILURE_FOR_REASON, CMPFailure
from iotpki.wire.cmp.central_keygen import (
    encrypted_key,
    requested_key_types,
    template_certification_request,
)
from iotpki.wire.cmp.messages import CertRequests, PKIMessage
from iotpki.wire.cms_envelope import CertificateRecipient, PasswordRecipient, Recipient
from iotpki.wire.errors import DecodeError


@dataclass(frozen=True)
class CentralKey:
    """A key made for one request, and the PKCS #10 request that certifies it."""

    generated: GeneratedKey
    csr: bytes
    recipient: Recipient


def wants_central_key(message: PKIMessage) -> bool:
    body = message.body
    return (isinstance(body, CertRequests) and len(body.requests) == 1
            and body.requests[0].central_keygen)


def prepare_central_key(delivery: KeyDelivery | None, message: PKIMessage, profile: str,
                        method: MethodName, secret: bytes | None,
                        signer: x509.Certificate | None) -> CentralKey:
    """Refuse (CMPFailure) before anything is issued if the key cannot be made or sent."""
    if delivery is None:
        raise CMPFailure("badCertTemplate", "central key generation is not offered here")
    if method is MethodName.MANUAL_APPROVAL:
        raise CMPFailure("badRequest", "central key generation cannot wait for manual approval")
    recipient = _recipient(secret, signer)
    body = message.body
    assert isinstance(body, CertRequests)
    request = body.requests[0]
    try:
        allowed = delivery.key_types(profile)
        generated = delivery.generate(profile, requested_key_types(request, allowed))
        csr = template_certification_request(request, generated.key)
    except KeyDeliveryError as exc:
        raise CMPFailure(FAILURE_FOR_REASON[exc.reason],
                         exc.detail) from exc
    except DecodeError as exc:
        raise CMPFailure("badCertTemplate", str(exc)) from exc
    return CentralKey(generated, csr, recipient)


def _recipient(secret: bytes | None, signer: x509.Certificate | None) -> Recipient:
    if secret is not None:
        return PasswordRecipient(secret)  # §4.1.6.3
    assert signer is not None
    if not isinstance(signer.public_key(), ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        # §4.1.6.1/2: the protection key must be able to transport or agree a key.
        raise CMPFailure("badAlg", "the protection certificate's key can neither transport "
                                   "nor agree a key (RSA or EC needed for central key "
                                   "generation)")
    _check_technique(signer)
    return CertificateRecipient(signer)


def _check_technique(signer: x509.Certificate) -> None:
    """§4.1.6.1 / §4.1.6.2: the key goes only to a protection certificate whose keyUsage
    permits the technique: keyEncipherment for key transport (RSA), keyAgreement for key
    agreement (EC). Without a keyUsage extension every use is permitted (RFC 5280 §4.2.1.3)."""
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise CMPFailure("badDataFormat", "the protection certificate's keyUsage cannot be "
                                          "read") from exc
    if isinstance(signer.public_key(), rsa.RSAPublicKey) and not usage.key_encipherment:
        raise CMPFailure("notAuthorized", "RFC 9483 §4.1.6.1: key transport needs "
                                          "keyEncipherment in the protection certificate")
    if isinstance(signer.public_key(), ec.EllipticCurvePublicKey) and not usage.key_agreement:
        raise CMPFailure("notAuthorized", "RFC 9483 §4.1.6.2: key agreement needs "
                                          "keyAgreement in the protection certificate")


def deliver_central_key(delivery: KeyDelivery, central: CentralKey, issued: Issued,
                        requester: str) -> bytes:
    """CertifiedKeyPair.privateKey content (EncryptedKey DER) for the issued certificate."""
    try:
        # RFC 9483 §4.1.6: signed by the key generation authority, here the CA's CMP
        # protection key (the answer is protected with it too).
        return encrypted_key(delivery.deliver(central.generated, issued, central.recipient,
                                              requester, Purpose.CMP_PROTECTION))
    except KeyDeliveryError as exc:
        raise CMPFailure("systemFailure", exc.detail) from exc
