"""The device agent's key on a SoftHSM2 token: made on first use, found again, signing a CSR
that `openssl req -verify` accepts, and never readable."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from iotpki.agent.token_key import TokenKeyError, open_token_key
from tests.hsm import MODULE, SoftHSM


def csr_pem(key: object) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-on-token")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        key, hashes.SHA256())  # type: ignore[arg-type]
    return request.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_device_key_is_made_once_and_signs_a_csr_openssl_verifies(
    softhsm: SoftHSM, key_type: str, tmp_path: Path
) -> None:
    uri = f"pkcs11:token=iotpki-second;object=device-{uuid.uuid4().hex[:8]}"
    key = open_token_key(uri, str(MODULE), softhsm.pin, key_type)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    again = open_token_key(uri, str(MODULE), softhsm.pin, key_type)
    assert again.public_key() == key.public_key()  # found, not made a second time
    (tmp_path / "req.pem").write_bytes(csr_pem(again))
    check = subprocess.run(["openssl", "req", "-in", str(tmp_path / "req.pem"), "-verify",
                            "-noout"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "verif" in (check.stdout + check.stderr).lower() and "OK" in check.stdout + check.stderr


def test_device_key_is_sensitive_and_not_extractable(softhsm: SoftHSM) -> None:
    label = f"device-{uuid.uuid4().hex[:8]}"
    open_token_key(f"pkcs11:token=iotpki-second;object={label}", str(MODULE), softhsm.pin)
    token = pkcs11.lib(str(MODULE)).get_token(token_label="iotpki-second")
    try:
        session = token.open(user_pin=softhsm.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        session = token.open()
    with session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        assert key[Attribute.EXTRACTABLE] is False and key[Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]


def test_pin_from_the_uri_pin_source(softhsm: SoftHSM, tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text(softhsm.pin + "\n")
    key = open_token_key(f"pkcs11:token=iotpki-second;object=device-pin?pin-source=file:{pin}",
                         str(MODULE))
    key.public_key().verify(key.sign(b"x", ec.ECDSA(hashes.SHA256())), b"x",
                            ec.ECDSA(hashes.SHA256()))


def test_bad_device_key_uris(softhsm: SoftHSM) -> None:
    with pytest.raises(TokenKeyError, match="must name the key"):
        open_token_key("pkcs11:token=iotpki-second", str(MODULE), softhsm.pin)
    with pytest.raises(TokenKeyError, match="no single token"):
        open_token_key("pkcs11:token=absent;object=k", str(MODULE), softhsm.pin)
    with pytest.raises(TokenKeyError, match="not ed25519"):
        open_token_key("pkcs11:token=iotpki-second;object=k", str(MODULE), softhsm.pin,
                       "ed25519")
    with pytest.raises(TokenKeyError, match="no PIN"):
        open_token_key("pkcs11:token=iotpki-second;object=k", str(MODULE))


def test_wrong_pin_in_a_fresh_process(softhsm: SoftHSM) -> None:
    """A process of its own: the login state is per process (PKCS#11 v2.40 §5.6)."""
    code = ("from iotpki.agent.token_key import open_token_key, TokenKeyError\n"
            "try:\n"
            f"    open_token_key('pkcs11:token=iotpki-second;object=k', {str(MODULE)!r}, 'bad')\n"
            "except TokenKeyError as exc:\n"
            "    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert run.stdout.strip() == "wrong PIN for token 'iotpki-second'", run.stderr
