"""The agent with its keys on a SoftHSM2 token: enrollment and renewal over CMP against a real
`iotpki serve`, a new non-extractable token key per version, the chain checked by openssl."""

from __future__ import annotations

import subprocess
import uuid

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from iotpki.agent.factory import build_agent
from iotpki.agent.keystore import KeyStoreError
from iotpki.agent.token_store import URI_FILE, TokenKeyStore
from tests.agent.conftest import Servers
from tests.hsm import MODULE, SoftHSM

TOKEN = "iotpki-second"


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
    servers: Servers, softhsm: SoftHSM
) -> None:
    stem = f"sensor-{uuid.uuid4().hex[:8]}"
    servers.dir.mkdir(parents=True, exist_ok=True)
    pin_file = servers.dir / "pin"
    pin_file.write_text(softhsm.pin)
    registration, secret = servers.secret_registration("sensor-token")
    config = servers.config("sensor-token", "cmp", {
        "registration_id": registration, "secret": secret},
        key_uri=f"pkcs11:token={TOKEN};object={stem}?pin-source=file:{pin_file}",
        pkcs11_module=str(MODULE))
    with build_agent(config) as agent:
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


def test_a_key_uri_without_an_object_is_refused(servers: Servers, softhsm: SoftHSM) -> None:
    with pytest.raises(KeyStoreError, match="object="):
        TokenKeyStore(servers.dir / "nowhere", f"pkcs11:token={TOKEN}", str(MODULE))
