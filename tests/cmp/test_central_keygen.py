"""Central key generation (RFC 9483 §4.1.6) against `iotpki serve`. OpenSSL 3.0 cannot ask
for it, so the requests come from our encoder; the answers are read with real peers:
`openssl cms -decrypt` (PasswordRecipientInfo with -pwri_password, KeyAgreeRecipientInfo
and KeyTransRecipientInfo with the requester's key), `openssl cms -verify` on the inner
SignedData, `openssl asn1parse` on the AsymmetricKeyPackage, `openssl verify` on the
certificate; the key must match the issued certificate."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from iotpki.core.ra.enrollment import fingerprint
from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg, encode_mac_request
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.protection import MACProtection, PBMParameters, verify_mac
from iotpki.wire.cmp.requests import encode_signed_request
from iotpki.wire.cms_envelope import algorithm_id, oid
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import DOMAIN, Scene, error_failures, post_cmp, write_pem
from tests.cmp.keygen_peer import certified_key_pair, open_key_delivery, same_key

pytestmark = pytest.mark.interop
SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
P384 = algorithm_id("1.2.840.10045.2.1", oid("1.3.132.0.34"))
P521 = algorithm_id("1.2.840.10045.2.1", oid("1.3.132.0.35"))


def _pbm(secret: str) -> MACProtection:
    return MACProtection(secret.encode(), PBMParameters(os.urandom(16), SHA256, 10_000,
                                                        HMAC_SHA256))


def _mac_ir(scene: Scene, key_algorithm: bytes | None = None,
            subject: str = "CN=sensor-7") -> tuple[str, bytes]:
    registration, secret = scene.secret_registration(subject)
    request = encode_keygen_cert_req_msg(parse_subject(subject), key_algorithm)
    der = encode_mac_request("ir", tlv(SEQUENCE, request), _pbm(secret), registration.encode(),
                             datetime.now(UTC), implicit_confirm=True)
    status, content_type, answer = post_cmp(f"{scene.server.url}/.well-known/cmp", der)
    assert status == 200 and content_type == "application/pkixcmp"
    return secret, answer


def test_mac_protected_ir_gets_the_key_under_the_shared_secret(scene: Scene) -> None:
    secret, answer = _mac_ir(scene)
    verify_mac(decode_pki_message(answer), secret.encode())  # answered with the same MAC
    certificate, enveloped = certified_key_pair(answer)
    key = open_key_delivery(scene.dir, enveloped, ["-pwri_password", secret],
                            scene.dir / "root.pem")
    assert same_key(key, certificate)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    write_pem(scene.dir / "device.pem", certificate)
    scene.verify("device.pem")
    record = scene.pki.certificates.get_by_fingerprint(fingerprint(certificate))
    assert record.sans == (f"uri:urn:iotpki:domain:{DOMAIN}",)
    generated = scene.audit("key.server-generated")
    assert generated == [{"outcome": "success", "actor": generated[0]["actor"],
                          "target": f"{record.authority}:{record.serial_hex}",
                          "key_type": "ec-p256", "archived": False}]
    assert secret not in str(generated)


def test_the_template_names_the_key_type(scene: Scene) -> None:
    secret, answer = _mac_ir(scene, P384)
    certificate, enveloped = certified_key_pair(answer)
    key = open_key_delivery(scene.dir, enveloped, ["-pwri_password", secret],
                            scene.dir / "root.pem")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert same_key(key, certificate)


def _issued_count(scene: Scene) -> int:
    """Certificates issued to clients (not the server's own OCSP and CMP signers)."""
    return sum(1 for a in scene.audit("certificate.issue")
               if a["outcome"] == "success" and a["method"] != "internal")


def test_a_key_type_outside_the_profile_is_refused_and_nothing_issued(scene: Scene) -> None:
    before = _issued_count(scene)
    _, answer = _mac_ir(scene, P521)
    assert error_failures(answer) == ("error", {"badCertTemplate"})
    assert _issued_count(scene) == before
    assert [r["failure"] for r in scene.audit("cmp.request")] == ["badCertTemplate"]
    assert scene.audit("key.server-generated") == []


def _current_certificate(scene: Scene, key_option: list[str]) -> None:
    """device.pem / device.key from `openssl cmp` ir with a one-time secret."""
    registration, secret = scene.secret_registration("CN=sensor-7")
    subprocess.run(["openssl", "genpkey", *key_option, "-out", "device.key"], cwd=scene.dir,
                   check=True, capture_output=True, timeout=60)
    scene.cmp("-cmd", "ir", "-ref", registration, "-secret", f"pass:{secret}",
              "-newkey", "device.key", "-subject", "/CN=sensor-7", "-recipient", "/CN=iotpki",
              "-certout", "device.pem", "-implicit_confirm")


def _signed_cr(scene: Scene) -> bytes:
    key = serialization.load_pem_private_key((scene.dir / "device.key").read_bytes(), None)
    chain = (scene.certificate("device.pem"),)
    request = encode_keygen_cert_req_msg(parse_subject("CN=sensor-7"))
    der = encode_signed_request("cr", request, key, chain, datetime.now(UTC))
    status, _, answer = post_cmp(f"{scene.server.url}/.well-known/cmp", der)
    assert status == 200
    return answer


@pytest.mark.parametrize(("key_option", "recipient_info"), [
    (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "KeyAgreeRecipientInfo"),
    (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "KeyTransRecipientInfo"),
], ids=["ec-kari", "rsa-ktri"])
def test_signed_cr_gets_the_key_for_the_protection_certificate(
        scene: Scene, key_option: list[str], recipient_info: str) -> None:
    _current_certificate(scene, key_option)
    certificate, enveloped = certified_key_pair(_signed_cr(scene))
    key = open_key_delivery(scene.dir, enveloped, ["-recip", "device.pem", "-inkey",
                                                   "device.key"], scene.dir / "root.pem")
    assert same_key(key, certificate)
    listing = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in",
                              "key.env"], cwd=scene.dir, capture_output=True, text=True,
                             check=True, timeout=30).stdout
    assert recipient_info.replace("RecipientInfo", "").lower() in listing.lower() or \
        ("d.ktri" if recipient_info.startswith("KeyTrans") else "d.kari") in listing
    assert certificate.subject == scene.certificate("device.pem").subject


def test_an_ed25519_signer_cannot_receive_a_key(scene: Scene) -> None:
    _current_certificate(scene, ["-algorithm", "ED25519"])
    before = _issued_count(scene)
    assert error_failures(_signed_cr(scene)) == ("error", {"badAlg"})
    assert _issued_count(scene) == before


def test_rsa_and_ec_keys_only_are_sent_to(scene: Scene) -> None:
    """The profile's RSA sizes are honoured when asked for by algorithm."""
    secret, answer = _mac_ir(scene, algorithm_id("1.2.840.113549.1.1.1", b"\x05\x00"))
    certificate, enveloped = certified_key_pair(answer)
    key = open_key_delivery(scene.dir, enveloped, ["-pwri_password", secret],
                            scene.dir / "root.pem")
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert same_key(key, certificate) and isinstance(certificate, x509.Certificate)
