"""The agent with its keys on a SoftHSM2 token: enrollment and renewal over CMP against the
server's plain-HTTP application in process (`tests/agent/inprocess.py`: the token and
openssl are the real peers here, the socket adds nothing), a new non-extractable token key
per version, the chain checked by openssl; pruning destroys old keys on the token."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from iotpki.agent.factory import build_agent
from iotpki.agent.keystore import KeyStoreError
from iotpki.agent.token_store import URI_FILE, TokenKeyStore
from iotpki.wire.keys import signature_hash_for
from tests.agent.conftest import Servers
from tests.agent.inprocess import ASGITransport, in_process_servers
from tests.conftest import shared_demo_pki
from tests.hsm import MODULE, SoftHSM

TOKEN = "iotpki-second"


@pytest.fixture(scope="module")
def in_process(module_database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[tuple[Servers, ASGITransport]]:
    directory = tmp_path_factory.mktemp("token-agent")
    with shared_demo_pki(request, directory, module_database_url, "http://pki.test") as pki, \
            in_process_servers(pki, directory) as served:
        yield served


def _private_key_attributes(softhsm: SoftHSM, label: str) -> tuple[bool, bool]:
    token = pkcs11.lib(str(MODULE)).get_token(token_label=TOKEN)
    try:
        session = token.open(user_pin=softhsm.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        session = token.open()
    with session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        return bool(key[Attribute.EXTRACTABLE]), bool(key[Attribute.SENSITIVE])


def test_cmp_enrollment_and_renewal_with_keys_on_the_token(
    in_process: tuple[Servers, ASGITransport], softhsm: SoftHSM
) -> None:
    servers, transport = in_process
    stem = f"sensor-{uuid.uuid4().hex[:8]}"
    servers.dir.mkdir(parents=True, exist_ok=True)
    pin_file = servers.dir / "pin"
    pin_file.write_text(softhsm.pin)
    registration, secret = servers.secret_registration("sensor-token")
    config = servers.config("sensor-token", "cmp", {
        "registration_id": registration, "secret": secret},
        key_uri=f"pkcs11:token={TOKEN};object={stem}?pin-source=file:{pin_file}",
        pkcs11_module=str(MODULE))
    with build_agent(config, transport=transport) as agent:
        assert isinstance(agent.store, TokenKeyStore)
        first = agent.enroll()
        second = agent.renew()

    assert second.certificate.public_key() != first.certificate.public_key()  # re-keyed
    for identity in (first, second):
        version_dir = config.directory / "archive" / identity.version
        assert not (version_dir / "key.pem").exists()  # no key material on disk
        assert f"object={stem}-{identity.version}" in (version_dir / URI_FILE).read_text()
        assert _private_key_attributes(softhsm, f"{stem}-{identity.version}") == (False, True)
    # a fresh store (a restarted agent) finds the current key on the token
    reopened = TokenKeyStore(config.directory, config.key_uri or "", str(MODULE))
    current = reopened.current()
    assert current is not None and current.certificate == second.certificate
    root = servers.dir / "root.pem"
    root.write_bytes(agent.trust.pem())
    done = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted",
                           str(second.chain_file), str(second.chain_file)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _token_labels(softhsm: SoftHSM, stem: str) -> list[tuple[str, str]]:
    """(label, class) of every key object on the token whose label starts with `stem`."""
    token = pkcs11.lib(str(MODULE)).get_token(token_label=TOKEN)
    try:
        session = token.open(user_pin=softhsm.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        session = token.open()
    with session:
        return sorted((str(o[Attribute.LABEL]), ObjectClass(o[Attribute.CLASS]).name)
                      for kind in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
                      for o in session.get_objects({Attribute.CLASS: kind})
                      if str(o[Attribute.LABEL]).startswith(stem))


def _self_signed(key: object) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prune-test")])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, signature_hash_for(key)))  # type: ignore[arg-type]


def test_prune_destroys_the_old_keys_on_the_token(tmp_path: Path, softhsm: SoftHSM) -> None:
    """Issue 19: a pruned version's key pair leaves the token (private and public objects),
    not only its directory; the current version's key stays and still signs."""
    stem = f"prune-{uuid.uuid4().hex[:8]}"
    store = TokenKeyStore(tmp_path / "device", f"pkcs11:token={TOKEN};object={stem}",
                          str(MODULE), softhsm.pin)
    for _ in range(4):
        pending = store.new_key("ec-p256")
        store.install(pending, [_self_signed(pending.key)])
    assert len(_token_labels(softhsm, stem)) == 8  # four pairs

    assert store.prune(keep=1) == ["0001", "0002", "0003"]

    assert _token_labels(softhsm, stem) == [(f"{stem}-0004", "PRIVATE_KEY"),
                                            (f"{stem}-0004", "PUBLIC_KEY")]
    assert store.versions() == ["0004"]
    current = TokenKeyStore(tmp_path / "device", f"pkcs11:token={TOKEN};object={stem}",
                            str(MODULE), softhsm.pin).current()
    assert current is not None and current.version == "0004"
    _self_signed(current.key)  # the remaining key still signs on the token


def test_a_key_uri_without_an_object_is_refused(tmp_path: Path, softhsm: SoftHSM) -> None:
    with pytest.raises(KeyStoreError, match="object="):
        TokenKeyStore(tmp_path / "nowhere", f"pkcs11:token={TOKEN}", str(MODULE))
