"""The PKCS#11 key backend against a real token (SoftHSM2), checked by peers we did not write:
python-pkcs11 reading the key attributes back, `pkcs11-tool` (OpenSC) listing and trying to
read the private key, `openssl verify` on what the token signed."""

from __future__ import annotations

import datetime
import multiprocessing
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from iotpki.keys.errors import KeyNotFoundError, TokenError
from iotpki.keys.pkcs11 import PKCS11KeyBackend
from iotpki.wire.external_key import ExternalKeyError
from iotpki.wire.keys import UnsupportedKeyError, generate_private_key
from iotpki.wire.pkcs11_uri import decode_pkcs11_uri
from tests.hsm import MODULE, SoftHSM


@pytest.fixture
def backend(softhsm: SoftHSM) -> PKCS11KeyBackend:
    return PKCS11KeyBackend(MODULE, softhsm.uri, lambda: softhsm.pin)


def self_signed(key: Any, name: str = "token test") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    hash_algorithm = hashes.SHA384() if getattr(key, "key_size", 0) == 384 else hashes.SHA256()
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hash_algorithm))


def token_private_object(softhsm: SoftHSM, key_ref: str) -> dict[Attribute, Any]:
    """The private key's protection attributes as python-pkcs11 reads them (its own session)."""
    uri = decode_pkcs11_uri(key_ref)
    token = pkcs11.lib(str(MODULE)).get_token(token_label=uri.token)
    try:
        session = token.open(user_pin=softhsm.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:  # login is per process, the pool has it
        session = token.open()
    with session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=uri.id)
        attributes = key.get_attributes([Attribute.EXTRACTABLE, Attribute.SENSITIVE,
                                         Attribute.NEVER_EXTRACTABLE, Attribute.ALWAYS_SENSITIVE,
                                         Attribute.TOKEN, Attribute.DECRYPT, Attribute.DERIVE])
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE if key.key_type == pkcs11.KeyType.EC
                else Attribute.PRIVATE_EXPONENT]
        # Nor can it leave wrapped (encrypted under another key on the token).
        wrapper = session.generate_key(pkcs11.KeyType.AES, 256, store=False,
                                       capabilities=pkcs11.MechanismFlag.WRAP)
        with pytest.raises(pkcs11.exceptions.KeyUnextractable):
            wrapper.wrap_key(key, mechanism=pkcs11.Mechanism.AES_KEY_WRAP_PAD)
    return attributes


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048"])
def test_generated_key_signs_a_certificate_openssl_verifies(
    backend: PKCS11KeyBackend, key_type: str, tmp_path: Path
) -> None:
    ref = backend.generate(key_type, "signs")
    assert ref.startswith("pkcs11:token=iotpki-test;object=signs-") and "type=private" in ref
    assert "pin" not in ref
    key = backend.load(ref)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    cert = self_signed(key)
    cert.verify_directly_issued_by(cert)
    pem = tmp_path / "ca.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    check = subprocess.run(["openssl", "verify", "-CAfile", str(pem), str(pem)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and ": OK" in check.stdout, check.stderr


def test_rsa_pss_and_prehashed_signatures_verify(backend: PKCS11KeyBackend) -> None:
    key = backend.load(backend.generate("rsa-2048", "pss"))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    signature = key.sign(b"message", pss, hashes.SHA256())
    key.public_key().verify(signature, b"message", pss, hashes.SHA256())
    ec_key = backend.load(backend.generate("ec-p384", "prehashed"))
    digest = hashes.Hash(hashes.SHA384())
    digest.update(b"message")
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    signature = ec_key.sign(digest.finalize(), ec.ECDSA(Prehashed(hashes.SHA384())))
    ec_key.public_key().verify(signature, b"message", ec.ECDSA(hashes.SHA384()))


def test_private_keys_are_sensitive_and_never_extractable(
    backend: PKCS11KeyBackend, softhsm: SoftHSM
) -> None:
    for key_type in ("ec-p256", "rsa-2048"):
        ref = backend.generate(key_type, "locked")
        attributes = token_private_object(softhsm, ref)
        assert attributes[Attribute.EXTRACTABLE] is False
        assert attributes[Attribute.SENSITIVE] is True
        assert attributes[Attribute.NEVER_EXTRACTABLE] is True
        assert attributes[Attribute.ALWAYS_SENSITIVE] is True
        assert attributes[Attribute.TOKEN] is True
        assert attributes[Attribute.DECRYPT] is False and attributes[Attribute.DERIVE] is False
        with pytest.raises(ExternalKeyError):
            backend.load(ref).private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())


@pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="OpenSC pkcs11-tool missing")
def test_pkcs11_tool_sees_a_sensitive_never_extractable_key(
    backend: PKCS11KeyBackend, softhsm: SoftHSM
) -> None:
    ref = backend.generate("ec-p256", "opensc")
    label = decode_pkcs11_uri(ref).object
    assert label is not None
    base = ["pkcs11-tool", "--module", str(MODULE), "--token-label", softhsm.label,
            "--login", "--pin", softhsm.pin]
    listed = subprocess.run([*base, "--list-objects", "--type", "privkey", "--label", label],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    access = next(line for line in listed.stdout.splitlines() if "Access:" in line)
    assert "sensitive" in access and "never extractable" in access, listed.stdout


def test_a_key_named_by_label_alone_is_found_and_gets_its_full_reference(
    backend: PKCS11KeyBackend,
) -> None:
    ref = backend.generate("ec-p256", "by-label", "pkcs11:token=iotpki-test;object=by-label-x")
    assert "object=by-label-x" in ref
    key = backend.load("pkcs11:token=iotpki-test;object=by-label-x")
    assert key.key_ref == ref
    by_id = backend.load(f"pkcs11:token=iotpki-test;id={ref.split('id=')[1].split(';')[0]}")
    assert by_id.public_key() == key.public_key()


def test_a_second_token_named_in_the_location_gets_the_key(backend: PKCS11KeyBackend) -> None:
    ref = backend.generate("ec-p256", "elsewhere", "pkcs11:token=iotpki-second")
    assert ref.startswith("pkcs11:token=iotpki-second;")
    assert backend.location_of(ref) == "pkcs11:token=iotpki-second"
    self_signed(backend.load(ref))


def test_bad_input_gives_specific_errors_before_any_key_is_made(
    backend: PKCS11KeyBackend,
) -> None:
    with pytest.raises(UnsupportedKeyError, match="ed25519 cannot be kept on a PKCS#11 token"):
        backend.check("ed25519")
    with pytest.raises(UnsupportedKeyError, match="ml-dsa-65"):
        backend.generate("ml-dsa-65", "pq")
    with pytest.raises(TokenError, match="no PKCS#11 token matches token 'absent'"):
        backend.check("ec-p256", "pkcs11:token=absent")
    with pytest.raises(KeyNotFoundError, match="not found: key 'no-such-key'"):
        backend.load("pkcs11:token=iotpki-test;object=no-such-key")
    with pytest.raises(KeyNotFoundError, match="PIN in a PKCS#11 URI"):
        backend.generate("ec-p256", "x", "pkcs11:token=iotpki-test?pin-value=1234")
    backend.generate("ec-p256", "taken", "pkcs11:token=iotpki-test;object=taken-label")
    with pytest.raises(TokenError, match="exists already"):
        backend.check("ec-p256", "pkcs11:token=iotpki-test;object=taken-label")


def test_missing_module_is_a_token_error(softhsm: SoftHSM, tmp_path: Path) -> None:
    lost = PKCS11KeyBackend(tmp_path / "nowhere.so", softhsm.uri, lambda: softhsm.pin)
    with pytest.raises(TokenError, match=r"nowhere\.so does not exist"):
        lost.check("ec-p256")


def test_discard_removes_only_keys_this_backend_made(
    backend: PKCS11KeyBackend, softhsm: SoftHSM
) -> None:
    made = backend.generate("ec-p256", "discarded")
    backend.discard(made)
    with pytest.raises(KeyNotFoundError):
        PKCS11KeyBackend(MODULE, softhsm.uri, lambda: softhsm.pin).load(made)
    kept = backend.generate("ec-p256", "kept")
    other = PKCS11KeyBackend(MODULE, softhsm.uri, lambda: softhsm.pin)
    other.discard(kept)  # not made by `other`: forgotten, not destroyed
    self_signed(other.load(kept))


def test_software_key_imported_onto_the_token_signs_and_cannot_be_read_back(
    backend: PKCS11KeyBackend, softhsm: SoftHSM
) -> None:
    for key_type in ("ec-p384", "rsa-2048"):
        software = generate_private_key(key_type)
        ref = backend.import_private_key(software, "imported")
        key = backend.load(ref)
        assert key.public_key() == software.public_key()
        self_signed(key).verify_directly_issued_by(self_signed(software))  # same name, same key
        attributes = token_private_object(softhsm, ref)
        assert attributes[Attribute.EXTRACTABLE] is False and attributes[Attribute.SENSITIVE]


def test_loading_and_signing_from_many_threads_at_once(
    backend: PKCS11KeyBackend, softhsm: SoftHSM
) -> None:
    """Each thread loads the key through a backend of its own (attribute reads) while the
    others sign: every call into the module must be under the pool's lock."""
    ref = backend.generate("ec-p256", "threads")
    failures: list[BaseException] = []

    def sign_some() -> None:
        try:
            key = PKCS11KeyBackend(MODULE, softhsm.uri, lambda: softhsm.pin).load(ref)
            for i in range(15):
                message = f"message {i}".encode()
                key.public_key().verify(key.sign(message, ec.ECDSA(hashes.SHA256())), message,
                                        ec.ECDSA(hashes.SHA256()))
        except BaseException as exc:  # collected and reported below
            failures.append(exc)

    threads = [threading.Thread(target=sign_some) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def _sign_in_child(key: Any, queue: Any) -> None:
    try:
        queue.put(key.sign(b"from the child", ec.ECDSA(hashes.SHA256())))
    except BaseException as exc:
        queue.put(repr(exc))


def test_a_forked_child_opens_its_own_session(backend: PKCS11KeyBackend) -> None:
    """The parent has a logged-in session and a cached key handle; the child must re-initialize
    the module (PKCS#11 v2.40 §6.6.1) and still sign, and the parent must carry on."""
    key = backend.load(backend.generate("ec-p256", "fork"))
    key.sign(b"parent first", ec.ECDSA(hashes.SHA256()))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sign_in_child, args=(key, queue))
    child.start()
    signature = queue.get(timeout=60)
    child.join(timeout=60)
    assert isinstance(signature, bytes), signature
    key.public_key().verify(signature, b"from the child", ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(key.sign(b"parent after", ec.ECDSA(hashes.SHA256())),
                            b"parent after", ec.ECDSA(hashes.SHA256()))


def test_rsa_key_made_to_decrypt_decrypts_in_the_token(backend: PKCS11KeyBackend,
                                                       softhsm: SoftHSM) -> None:
    """A SCEP RA key (RFC 8894 §3.2.2: clients encrypt the content key to it with RSA PKCS#1
    v1.5) stays on the token and decrypts there; a key made for signing only refuses."""
    ref = backend.generate("rsa-2048", "scep-ra", decrypt=True)
    key = backend.load(ref)
    assert token_private_object(softhsm, ref)[Attribute.DECRYPT] is True
    secret = b"content-encryption-key-16"
    ciphertext = key.public_key().encrypt(secret, padding.PKCS1v15())
    assert key.decrypt(ciphertext, padding.PKCS1v15()) == secret
    with pytest.raises(ValueError):
        key.decrypt(b"\x00" * 256, padding.PKCS1v15())

    signing_only = backend.load(backend.generate("rsa-2048", "signer"))
    with pytest.raises(ValueError):
        signing_only.decrypt(signing_only.public_key().encrypt(secret, padding.PKCS1v15()),
                             padding.PKCS1v15())
    with pytest.raises(UnsupportedKeyError):
        backend.generate("ec-p256", "no", decrypt=True)
