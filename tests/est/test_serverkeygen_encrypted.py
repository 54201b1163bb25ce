"""RFC 7030 §4.4.2 encrypted server-side key generation, with curl and openssl: a CSR with
AsymmetricDecryptKeyIdentifier (§4.4.1.2, built with `cryptography`) naming the TLS client
certificate gets the key as `application/pkcs7-mime; smime-type=server-generated-key`;
`openssl cms -decrypt` opens it with the client's key, `openssl cms -verify` checks the
inner SignedData, and the key matches the issued certificate. A DecryptKeyIdentifier
(symmetric) or an identifier naming another certificate is refused with 400, audited, and
nothing is issued."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc5652

from iotpki.core.ca.ports import Purpose
from iotpki.wire.est_keygen import (
    ASYMMETRIC_DECRYPT_KEY_ID,
    DECRYPT_KEY_ID,
    SERVER_GENERATED_KEY,
    decode_encrypted_serverkeygen,
)
from iotpki.wire.keys import generate_private_key
from tests.cmp.keygen_peer import open_key_delivery, same_key
from tests.est.conftest import EST, Answer
from tests.supply_chain.story import DEVICE_TARGET, make_chip, ship

pytestmark = pytest.mark.interop


def _csr_with(est: EST, attribute: x509.ObjectIdentifier, key_id: bytes) -> None:
    key = generate_private_key("ec-p256")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7")]))
           .add_attribute(attribute, key_id, _tag=_ASN1Type.OctetString)
           .sign(key, hashes.SHA256()))
    (est.dir / "keygen.b64").write_bytes(base64.encodebytes(csr.public_bytes(Encoding.DER)))


def _chip(est: EST) -> x509.Certificate:
    chip = make_chip(est.pki, 7)
    ship(est.pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    (est.dir / "chip.pem").write_bytes(chip.chain[0].public_bytes(Encoding.PEM))
    (est.dir / "chip.key").write_bytes(chip.key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    device_root = est.pki.authorities.get("deviceco-devices").full_chain[-1]
    (est.dir / "device-root.pem").write_bytes(device_root.public_bytes(Encoding.PEM))
    return chip.chain[0]


def _ski(certificate: x509.Certificate) -> bytes:
    return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _serverkeygen(est: EST) -> Answer:
    return est.curl("serverkeygen", "--cert", "chip.pem", "--key", "chip.key",
                    label="devices", body=est.dir / "keygen.b64")


def test_key_encrypted_to_the_client_certificate(est: EST) -> None:
    chip = _chip(est)
    _csr_with(est, ASYMMETRIC_DECRYPT_KEY_ID, _ski(chip))
    answer = _serverkeygen(est)
    assert answer.status == 200, answer.body
    content_type = answer.headers["content-type"]
    assert f"Content-Type: {SERVER_GENERATED_KEY}".encode() in answer.body
    assert b"application/pkcs8" not in answer.body
    enveloped_info, certificate = decode_encrypted_serverkeygen(content_type, answer.body)
    (est.dir / "ci.der").write_bytes(enveloped_info)
    est.openssl("cms", "-cmsout", "-inform", "DER", "-in", "ci.der", "-out", "checked.der",
                "-outform", "DER")  # openssl reads the ContentInfo as it is
    info, _ = decoder.decode(enveloped_info, asn1Spec=rfc5652.ContentInfo())
    assert str(info["contentType"]) == "1.2.840.113549.1.7.3"
    key = open_key_delivery(est.dir, bytes(info["content"]), ["-recip", "chip.pem", "-inkey",
                                                            "chip.key"],
                            est.dir / "device-root.pem")
    assert same_key(key, certificate)
    assert certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "DeviceCo Device CA"
    # Signed with the CA's own key-delivery service key, not its CMP protection key.
    est.openssl("cms", "-verify", "-inform", "DER", "-in", "key.p7", "-CAfile", "device-root.pem",
                "-purpose", "any", "-signer", "signer.pem", "-out", "verified.akp")
    signer = x509.load_pem_x509_certificate((est.dir / "signer.pem").read_bytes())
    certificates = est.pki.service_certificates
    assert signer == certificates.current("deviceco-devices", Purpose.KEY_DELIVERY).certificate
    assert signer != certificates.current("deviceco-devices", Purpose.CMP_PROTECTION).certificate


@pytest.mark.parametrize("case", ["symmetric", "other-certificate", "no-client-certificate"])
def test_keys_that_cannot_be_encrypted_are_refused(est: EST, case: str) -> None:
    chip = _chip(est)
    before = len(est.issued("deviceco-devices"))
    if case == "symmetric":
        _csr_with(est, DECRYPT_KEY_ID, b"shared-key-7")
    else:
        _csr_with(est, ASYMMETRIC_DECRYPT_KEY_ID,
                  b"\x01" * 20 if case == "other-certificate" else _ski(chip))
    if case == "no-client-certificate":
        registration, secret = est.secret_registration("CN=sensor-7")
        answer = est.curl("serverkeygen", "-u", f"{registration}:{secret}",
                          body=est.dir / "keygen.b64")
    else:
        answer = _serverkeygen(est)
    assert answer.status == 400 and b"DecryptKeyIdentifier" in answer.body
    assert len(est.issued("deviceco-devices")) == before
    assert est.refusals()[-1]["reason"] == "key-encryption-unavailable"
